"""Helpers for the storage tests: sparse test files, digests, and the loop-device skip."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pycdi.cluster.storage import loopdev

MiB = 1 << 20


def needs_loop() -> None:
    if not loopdev.available():
        pytest.skip(f"loop devices need root and a usable {loopdev.LOOP_CONTROL} (uid {os.geteuid()})")


def write_sparse(path: Path, size: int, chunks: dict[int, bytes]) -> None:
    """A file of `size` bytes (holes) with the given data written at the given offsets."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in chunks.items():
            f.seek(offset)
            f.write(data)


def pattern(n: int, seed: int) -> bytes:
    """n non-zero, seed-dependent bytes (so misplaced ranges are caught)."""
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (n // len(block) + 1))[:n].replace(b"\0", b"\1")


def digest(path: Path, length: int | None = None) -> str:
    """sha256 of the first `length` bytes (all by default), read in chunks."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        remaining = os.lseek(fd, 0, os.SEEK_END) if length is None else length
        os.lseek(fd, 0, os.SEEK_SET)
        while remaining > 0:
            data = os.read(fd, min(MiB, remaining))
            if not data:
                break
            h.update(data)
            remaining -= len(data)
    finally:
        os.close(fd)
    return h.hexdigest()


def read_at(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)
