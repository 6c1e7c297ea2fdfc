"""Block volume copies: device or file to device or file, reading only data and skipping zero blocks."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pycdi.cluster.storage import loopdev
from pycdi.cluster.storage.copy import CopyResult, copy_file, open_path
from pycdi.cluster.storage.errors import StorageError
from pycdi.cluster.storage.fsinfo import clone_fd, data_extents

CHUNK = 1 << 20  # bytes read per system call when bytes have to pass through us
ZERO_BLOCK = 64 << 10  # granularity of zero detection: a zero block is left out of the target
_ZEROS = bytes(ZERO_BLOCK)
_ZERO_CHUNK = bytes(CHUNK)
BLKZEROOUT = 0x127F  # _IO(0x12, 127): zero a byte range of a block device (loop: fallocate, no data written)
BLKFLSBUF = 0x1261  # _IO(0x12, 97): drop the device's cached pages after its backing file changed underneath


@dataclass
class _Side:
    """One end of a block copy: the open device or file, and the file that really holds its bytes."""

    path: Path
    fd: int
    size: int
    is_block: bool
    backing: Path | None = None  # the regular file behind it (itself, or a loop device's backing file)
    base: int = 0  # where the device starts in the backing file
    extents_fd: int = -1  # an fd of the backing file, to ask SEEK_DATA/SEEK_HOLE; -1: no backing file known

    def close(self) -> None:
        if self.extents_fd >= 0 and self.extents_fd != self.fd:
            os.close(self.extents_fd)
        self.extents_fd = -1


def _side(path: Path, fd: int, st: os.stat_result) -> _Side:
    size = loopdev.device_size(fd)
    if not stat.S_ISBLK(st.st_mode):
        return _Side(path, fd, size, False, path, 0, fd)
    if loopdev.is_loop_device(path):
        backing = loopdev.backing_file(path)
        if backing is not None and backing.is_file():
            extents_fd = os.open(backing, os.O_RDONLY | os.O_CLOEXEC)
            return _Side(path, fd, size, True, backing, loopdev.offset(path), extents_fd)
    return _Side(path, fd, size, True)


def _data_ranges(side: _Side, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Ranges of [start, end) of the side that may hold non-zero bytes (holes of its backing file do not)."""
    if side.extents_fd < 0:
        if end > start:
            yield start, end - start
        return
    for off, length in data_extents(side.extents_fd, side.base + start, side.base + end):
        yield off - side.base, length


def _zero(dst: _Side, offset: int, length: int) -> None:
    """Make [offset, offset+length) of the target read as zeros."""
    if dst.is_block and offset % 512 == 0 and length % 512 == 0:
        try:
            fcntl.ioctl(dst.fd, BLKZEROOUT, struct.pack("=QQ", offset, length))
            return
        except OSError:
            pass  # the device cannot offload zeroing: write the zeros ourselves
    end = offset + length
    while offset < end:
        n = min(CHUNK, end - offset)
        offset += os.pwrite(dst.fd, _ZERO_CHUNK[:n] if n < CHUNK else _ZERO_CHUNK, offset)


def _copy_range(src: _Side, dst: _Side, offset: int, length: int, buf: bytearray) -> int:
    """Copy one data range in CHUNKs, leaving out zero blocks where the target already reads zeros."""
    view, written, end = memoryview(buf), 0, offset + length
    while offset < end:
        n = os.preadv(src.fd, [view[:min(CHUNK, end - offset)]], offset)
        if n == 0:
            break
        target_clean = not any(True for _ in _data_ranges(dst, offset, offset + n))
        if not target_clean:
            written += os.pwrite(dst.fd, view[:n], offset)  # must overwrite what is there, zeros included
        elif (buf[:n] != _ZERO_CHUNK[:n]) if n < CHUNK else (buf != _ZERO_CHUNK):
            run = -1  # start of the current run of non-zero blocks
            for i in range(0, n + ZERO_BLOCK, ZERO_BLOCK):
                zero = i >= n or buf[i:min(i + ZERO_BLOCK, n)] == _ZEROS[:min(ZERO_BLOCK, n - i)]
                if not zero and run < 0:
                    run = i
                elif zero and run >= 0:
                    written += os.pwrite(dst.fd, view[run:min(i, n)], offset + run)
                    run = -1
        offset += n
    return written


def _reflink_backings(src: _Side, dst: _Side) -> CopyResult | None:
    """Share extents between the two backing files when both sides are whole files on one reflink filesystem."""
    if src.backing is None or dst.backing is None or src.base or dst.base:
        return None
    if src.size != os.stat(src.backing).st_size or dst.size != os.stat(dst.backing).st_size:
        return None
    if os.stat(src.backing).st_dev != os.stat(dst.backing).st_dev:
        return None
    sfd = os.open(src.backing, os.O_RDONLY | os.O_CLOEXEC)
    dfd = os.open(dst.backing, os.O_RDWR | os.O_CLOEXEC)
    try:
        if src.is_block:
            os.fsync(src.fd)  # writes still cached on the source device must reach its backing file first
        os.ftruncate(dfd, 0)  # nothing of the old target survives beyond the source's end
        if not clone_fd(sfd, dfd):
            os.ftruncate(dfd, dst.size)
            return None
        os.ftruncate(dfd, dst.size)
        os.fsync(dfd)
        if dst.is_block:
            fcntl.ioctl(dst.fd, BLKFLSBUF, 0)  # the device may cache the blocks the clone replaced
    finally:
        os.close(sfd)
        os.close(dfd)
    return CopyResult("reflink", src.size)


def copy_block(src: Path, dst: Path, *, sync: bool = True) -> CopyResult:
    """Copy a Block volume: block device or file to block device or file (created when missing).

    The target ends up holding the source's bytes followed by zeros. Reflink when both are whole files
    (or loop devices over them) on one reflink filesystem; else only data is read (a file's or a loop
    device's backing file's data extents) and zero blocks are not written where the target already
    reads zeros (a file target, a loop device over holes), so sparse stays sparse; "stream" when the
    target is a device that must be written in full. A block target must be at least as large as the
    source and not mounted (it is opened O_EXCL).
    """
    try:
        src_st = os.stat(src)
        if not os.path.exists(dst):
            os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o660))
        dst_st = os.stat(dst)
    except OSError as e:
        raise StorageError.from_os(f"cannot prepare the copy of {src} to", dst, e) from e
    for path, st in ((src, src_st), (dst, dst_st)):
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise StorageError("neither a block device nor a regular file", path, errno.EINVAL)
    if stat.S_ISREG(src_st.st_mode) and stat.S_ISREG(dst_st.st_mode):
        result = copy_file(src, dst, sync=False)
        try:
            if dst_st.st_size > src_st.st_size:
                os.truncate(dst, dst_st.st_size)  # a larger target (a bigger claim) keeps its size
            if sync:
                fd = open_path(dst, os.O_RDONLY, "target file")
                os.fsync(fd)
                os.close(fd)
        except OSError as e:
            raise StorageError.from_os("cannot finish the copy to", dst, e) from e
        return result
    src_fd = open_path(src, os.O_RDONLY, "source")
    try:
        dst_fd = open_path(dst, os.O_RDWR | (os.O_EXCL if stat.S_ISBLK(dst_st.st_mode) else 0), "target")
        try:
            return _copy_block_open(src, dst, src_fd, dst_fd, src_st, dst_st, sync)
        except OSError as e:
            raise StorageError.from_os(f"cannot copy {src} to", dst, e) from e
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _copy_block_open(src_path: Path, dst_path: Path, src_fd: int, dst_fd: int,
                     src_st: os.stat_result, dst_st: os.stat_result, sync: bool) -> CopyResult:
    src = _side(src_path, src_fd, src_st)
    try:
        dst = _side(dst_path, dst_fd, dst_st)
    except OSError:
        src.close()
        raise
    try:
        return _copy_sides(src, dst, sync)
    finally:
        src.close()
        dst.close()


def _copy_sides(src: _Side, dst: _Side, sync: bool) -> CopyResult:
    src_fd, dst_fd, dst_path = src.fd, dst.fd, dst.path
    if not dst.is_block:
        os.ftruncate(dst_fd, 0)  # a file target starts as one hole: zero blocks need no writing
        dst.size = max(dst.size, src.size)
        os.ftruncate(dst_fd, dst.size)
    elif dst.size < src.size:
        raise StorageError(f"the target is smaller ({dst.size} bytes) than the source ({src.size} bytes)",
                           dst_path, errno.ENOSPC)
    else:
        os.fsync(dst_fd)  # cached writes on the target device must show in its backing file's extents
    reflinked = _reflink_backings(src, dst)
    if reflinked is not None:
        return reflinked
    if src.is_block:
        os.fsync(src_fd)
    buf, written, pos = bytearray(CHUNK), 0, 0
    for off, length in _data_ranges(src, 0, src.size):
        for zoff, zlen in _data_ranges(dst, pos, off):  # the source's hole, where the target has data
            _zero(dst, zoff, zlen)
        written += _copy_range(src, dst, off, length, buf)
        pos = off + length
    for zoff, zlen in _data_ranges(dst, pos, dst.size):
        _zero(dst, zoff, zlen)
    if sync or dst.is_block:
        os.fsync(dst_fd)  # a device's page cache is not its backing file until flushed
    return CopyResult("sparse" if dst.extents_fd >= 0 else "stream", written)
