"""Build the image corpus into a directory: `python -m tests.images.build DIR [--virtual-size N] [--data-size N]`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tests.support.images import DEFAULT_DATA_SIZE, DEFAULT_SEED, DEFAULT_VIRTUAL_SIZE, corpus


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    suffix = text[-1:].lower()
    return int(float(text[:-1]) * units[suffix]) if suffix in units else int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--virtual-size", type=_size, default=DEFAULT_VIRTUAL_SIZE, help="e.g. 2g")
    parser.add_argument("--data-size", type=_size, default=DEFAULT_DATA_SIZE, help="e.g. 600m")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--only", nargs="*", help="entry names (default: every good and bad entry)")
    args = parser.parse_args(argv)
    c = corpus(args.dir, args.virtual_size, args.data_size, args.seed)
    start = time.monotonic()
    entries = [c.entry(n) for n in args.only] if args.only else c.build_all()
    for e in entries:
        path = c.path(e.name)
        print(f"{e.name:24} {path.stat().st_size:>14} {'good' if e.good else 'bad ':4} {path}")
    print(f"raw sha256 {c.sha256_raw}  virtual size {c.virtual_size}  ({time.monotonic() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
