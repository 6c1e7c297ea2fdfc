"""File helpers the tests and the benchmarks share: put a file's data on disk, or out of the page cache."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def _with_fd(path: Path, act: Callable[[int], object]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        act(fd)
    finally:
        os.close(fd)


def fsync_path(path: Path) -> None:
    _with_fd(path, os.fsync)


def drop_cache(path: Path) -> None:
    """Drop the file's clean pages from the page cache."""
    _with_fd(path, lambda fd: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED))
