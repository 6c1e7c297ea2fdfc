"""Blank images: a sparse disk.img of the usable size (Filesystem), or the device itself (Block)."""

from __future__ import annotations

import os
import stat

from .. import qemu
from ..target import Target

_ZEROS = bytes(1 << 20)
#: Allocation granularity of the filesystems behind thin volumes.
_BLOCK = 4096
_ZERO_BLOCK = bytes(_BLOCK)


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


def allocate_device(path: str, size: int) -> None:
    """Allocate every block of a Block volume that holds data already: zero blocks are written again (thin
    storage allocates them then), data blocks are left alone. A regular file standing in for a device is
    simply fallocated."""
    if not stat.S_ISBLK(os.stat(path).st_mode):
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            os.posix_fallocate(fd, 0, max(size, os.fstat(fd).st_size))
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        offset = 0
        while offset < size:
            n = min(len(_ZEROS), size - offset)
            data = os.pread(fd, n, offset)
            if _has_zero_block(data):
                # The whole chunk goes back: its zero blocks may be holes, its data is allocated already anyway.
                os.pwrite(fd, data, offset)
            offset += n
        os.fsync(fd)
    finally:
        os.close(fd)


def _has_zero_block(data: bytes) -> bool:
    """Whether some aligned filesystem block of `data` reads as zeros (and so may be unallocated)."""
    return any(data.startswith(_ZERO_BLOCK, pos, pos + _BLOCK) for pos in range(0, len(data), _BLOCK))


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
