"""Making a byte range of a target read as zeros without writing zeros where it can: the holes of a file are
punched, a block device is asked to zero out (a loop device then punches its backing file), and only what is
already data there needs it at all."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import stat
import struct

from .extents import Extents

BLKZEROOUT = 0x127F  # _IO(0x12, 127)
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
SECTOR = 512
_ZEROS = bytes(1 << 20)
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def _write_zeros(fd: int, offset: int, length: int) -> None:
    while length > 0:
        n = os.pwrite(fd, _ZEROS[:min(length, len(_ZEROS))], offset)
        offset += n
        length -= n


def _punch(fd: int, offset: int, length: int) -> bool:
    if _libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    if ctypes.get_errno() in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _zeroout(fd: int, offset: int, length: int) -> None:
    """BLKZEROOUT on the sector-aligned middle, plain zeros on the unaligned edges."""
    start = -(-offset // SECTOR) * SECTOR
    end = (offset + length) // SECTOR * SECTOR
    if end <= start:
        _write_zeros(fd, offset, length)
        return
    try:
        fcntl.ioctl(fd, BLKZEROOUT, struct.pack("=QQ", start, end - start))
    except OSError:
        _write_zeros(fd, start, end - start)
    _write_zeros(fd, offset, start - offset)
    _write_zeros(fd, end, offset + length - end)


def zero_range(target: Extents, offset: int, length: int) -> None:
    """Make [offset, offset + length) of the target read as zeros (only its data ranges are touched)."""
    device = stat.S_ISBLK(os.fstat(target.fd).st_mode)
    for start, size in list(target.data(offset, offset + length)):
        if device:
            _zeroout(target.fd, start, size)
        elif not _punch(target.fd, start, size):
            _write_zeros(target.fd, start, size)
