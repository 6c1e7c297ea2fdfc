"""Blank images: a sparse disk.img of the usable size (Filesystem), or the device itself (Block)."""

from __future__ import annotations

import os

from .. import qemu
from ..target import Target

_ZEROS = bytes(1 << 20)


def create(target: Target, *, preallocate: bool = False) -> bool:
    """Make the empty disk; returns whether preallocation was applied."""
    if not target.block:
        path = target.disk_path
        if os.path.exists(path):
            os.unlink(path)
        qemu.create_blank(path, target.usable(), preallocate=preallocate)
        return preallocate
    if not preallocate:
        return False  # a blank Block volume without preallocation is exactly the empty device
    _zero_device(target.device, target.available())
    return True


def _zero_device(path: str, size: int) -> None:
    """Write zeros over the whole device (preallocation on thin storage), then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        offset = 0
        while offset < size:
            n = min(len(_ZEROS), size - offset)
            offset += os.pwrite(fd, _ZEROS[:n], offset)
        os.fsync(fd)
    finally:
        os.close(fd)
