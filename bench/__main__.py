"""Run every benchmark, print one table, and write bench/results.json (a flat name -> number map)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from bench import apiserver, clone, clone_dv, clone_stream, imports, upload


def main() -> int:
    results: dict[str, float] = {}
    results.update(apiserver.run())
    results.update(clone.run())
    results.update(clone_stream.run())
    results.update(clone_dv.run())
    results.update(imports.run())
    results.update(upload.run())
    out = Path(__file__).with_name("results.json")
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nmeasured {date.today().isoformat()}")
    width = max(len(k) for k in results)
    for key, value in sorted(results.items()):
        print(f"{key:<{width}}  {value:>12.3f}")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
