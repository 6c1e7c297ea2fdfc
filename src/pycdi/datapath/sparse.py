"""Sparse writer: a byte stream written at increasing offsets, zero blocks left as holes, fsynced at the end."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from .formats import Readable

#: Read size: large sequential writes are what the disk likes; memory stays at one buffer.
CHUNK = 1 << 20
#: Hole granularity: zero runs this size and aligned become holes (filesystem blocks are 4 KiB; 64 KiB keeps
#: the per-block check cheap while losing little sparseness).
BLOCK = 64 * 1024
_ZERO_CHUNK = bytes(CHUNK)
_ZERO_BLOCK = bytes(BLOCK)


def is_block_device(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def _fill(reader: Readable, buf: bytearray) -> int:
    """Read until `buf` is full or the stream ends; return the byte count."""
    view = memoryview(buf)
    n = 0
    size = len(buf)
    while n < size:
        data = reader.read(size - n)
        if not data:
            break
        view[n : n + len(data)] = data
        n += len(data)
    return n


class SparseWriter:
    """Writes into a regular file (holes by not writing, then ftruncate) or a block device.

    On a block device a zero block is skipped only where the device already reads zeros (a fresh
    sparse-backed loop device does); elsewhere the zeros are written, so stale data never survives.
    """

    def __init__(self, path: str, *, create: bool = True, device: bool | None = None) -> None:
        self.path = path
        # `device`: treat the path as a Block volume even when it is a file standing in for one.
        self.block_device = is_block_device(path) if device is None else device
        # A block device is opened read-write: zero blocks are checked against what it already holds.
        flags = os.O_RDWR if self.block_device else os.O_WRONLY | (os.O_CREAT if create else 0)
        self._fd = os.open(path, flags | os.O_CLOEXEC, 0o660)
        self.offset = 0
        self.written = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SparseWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _zero_is_present(self, offset: int, length: int) -> bool:
        """Whether the device reads zeros at [offset, offset+length)."""
        data = os.pread(self._fd, length, offset)
        return len(data) == length and data == _ZERO_BLOCK[:length]

    def truncate(self) -> None:
        """Empty a regular file so a previous attempt's data cannot survive in what becomes a hole."""
        if not self.block_device:
            os.ftruncate(self._fd, 0)

    def write_chunk(self, buf: bytearray, n: int) -> None:
        """Write the first n bytes of `buf` at the current offset, skipping zero blocks."""
        base = self.offset
        if n == CHUNK and buf == _ZERO_CHUNK and not self.block_device:
            self.offset += n
            return
        view = memoryview(buf)
        start: int | None = None  # beginning of the current run of data blocks
        pos = 0
        while pos < n:
            end = min(pos + BLOCK, n)
            zero = buf[pos:end] == _ZERO_BLOCK[: end - pos]
            if zero and self.block_device and not self._zero_is_present(base + pos, end - pos):
                zero = False
            if zero:
                if start is not None:
                    self._pwrite(view[start:pos], base + start)
                    start = None
            elif start is None:
                start = pos
            pos = end
        if start is not None:
            self._pwrite(view[start:n], base + start)
        self.offset += n

    def _pwrite(self, data: memoryview, offset: int) -> None:
        done = 0
        while done < len(data):
            done += os.pwrite(self._fd, data[done:], offset + done)
        self.written += len(data)

    def finish(self, size: int | None = None) -> int:
        """Extend a file to its full length (trailing holes), fsync, and return the logical size."""
        end = self.offset if size is None else max(size, self.offset)
        if not self.block_device and os.fstat(self._fd).st_size < end:
            os.ftruncate(self._fd, end)
        os.fsync(self._fd)
        return end


def copy_sparse(
    reader: Readable,
    path: str,
    *,
    progress: Callable[[int], None] | None = None,
    size: int | None = None,
    device: bool | None = None,
) -> int:
    """Stream `reader` into `path` sparsely; returns the bytes of stream written (logical size)."""
    buf = bytearray(CHUNK)
    with SparseWriter(path, device=device) as writer:
        writer.truncate()
        while True:
            n = _fill(reader, buf)
            if n == 0:
                break
            writer.write_chunk(buf, n)
            if progress is not None:
                progress(writer.offset)
            if n < CHUNK:
                break
        total = writer.offset
        writer.finish(size)
    return total
