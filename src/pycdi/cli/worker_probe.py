"""`pycdi worker-probe`: a tiny worker that writes a known pattern into a volume, for node agent checks."""

from __future__ import annotations

import os
import signal
import sys
import time

import click

from ..datapath import termination
from ..datapath.paths import resolve

#: The pattern is the byte sequence 0..250 repeated (a prime length, so misplaced blocks show).
PATTERN = bytes(range(251))
CHUNK = 1 << 20


def pattern_bytes(offset: int, length: int) -> bytes:
    """The pattern's bytes at [offset, offset + length): what a reader checks the volume against."""
    start = offset % len(PATTERN)
    reps = (start + length) // len(PATTERN) + 1
    return (PATTERN * reps)[start:start + length]


@click.command("worker-probe")
@click.option("--path", "container_path", required=True,
              help="Container path to write: a file in a Filesystem volume or a block device path.")
@click.option("--bytes", "size", type=int, default=1 << 20, show_default=True, help="How many bytes to write.")
@click.option("--offset", type=int, default=0, show_default=True, help="Where to start writing.")
@click.option("--exit-code", type=int, default=0, show_default=True, help="Exit with this code when done.")
@click.option("--sleep", "sleep_seconds", type=float, default=0.0,
              help="Stay alive this long after writing (to test deletion and restarts).")
@click.option("--ignore-sigterm", is_flag=True, help="Ignore SIGTERM (to test the kill after the grace period).")
@click.option("--hold-memory", "hold_mib", type=int, default=0,
              help="First touch this many MiB of memory (to test the container's memory limit).")
def worker_probe(container_path: str, size: int, offset: int, exit_code: int, sleep_seconds: float,
                 ignore_sigterm: bool, hold_mib: int) -> None:
    """Write a known pattern, report progress on stdout and a JSON termination message, then exit."""
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    held = []
    for mib in range(hold_mib):
        held.append(bytearray(1 << 20))  # zero-filled pages are touched, so they count against the limit
        if mib % 64 == 63:
            click.echo(f"holding {mib + 1} MiB")
    target = resolve(container_path)
    click.echo(f"writing {size} bytes to {container_path} ({target}) at offset {offset}")
    flags = os.O_WRONLY | os.O_CREAT
    fd = os.open(target, flags, 0o644)
    written = 0
    try:
        while written < size:
            n = min(CHUNK, size - written)
            written += os.pwrite(fd, pattern_bytes(offset + written, n), offset + written)
            click.echo(f"progress {written * 100 // max(size, 1)}% ({written}/{size})")
        os.fsync(fd)
    finally:
        os.close(fd)
    termination.write_json({"bytesWritten": written, "offset": offset, "path": container_path})
    click.echo("done")
    sys.stdout.flush()
    if sleep_seconds > 0:
        # A probe that stays up stands in for a long-running worker (deletion and restart checks).
        time.sleep(sleep_seconds)
    sys.exit(exit_code)
