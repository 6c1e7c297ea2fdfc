"""Sparse writer: a byte stream written at increasing offsets, zero blocks left as holes, fsynced at the end."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from .formats import Readable, readinto
from .pipeline import BufferRing, WriteBehind

#: Read size: large sequential writes are what the disk likes.
CHUNK = 1 << 20
#: Buffers in flight between the reading thread (network, decompression) and the writer: memory stays at
#: BUFFERS chunks, and a few are enough to even out the two sides' bursts.
BUFFERS = 5
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


def _fill(reader: Readable, view: memoryview) -> int:
    """Read until `view` is full or the stream ends; return the byte count."""
    n = 0
    size = len(view)
    while n < size:
        got = readinto(reader, view[n:])
        if not got:
            break
        n += got
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

    def write_chunk(self, buf: bytes | bytearray, n: int) -> None:
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
            # startswith compares in place (memcmp); a slice would copy every data block first.
            zero = buf.startswith(_ZERO_BLOCK if end - pos == BLOCK else _ZERO_BLOCK[: end - pos], pos, end)
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

    def fileno(self) -> int:
        return self._fd

    def _pwrite(self, data: memoryview, offset: int) -> None:
        done = 0
        while done < len(data):
            done += os.pwrite(self._fd, data[done:], offset + done)
        self.written += len(data)

    def finish(self, size: int | None = None, *, sync: bool = True) -> int:
        """Extend a file to its full length (trailing holes), fsync (unless told not to), return the logical size."""
        end = self.offset if size is None else max(size, self.offset)
        if not self.block_device and os.fstat(self._fd).st_size < end:
            os.ftruncate(self._fd, end)
        if sync:
            os.fsync(self._fd)
        return end


def _read_chunks(reader: Readable) -> Callable[[BufferRing], None]:
    """The ring's producer: whole chunks from the stream; a short one (maybe empty) is the last."""

    def produce(ring: BufferRing) -> None:
        offset = 0
        while (buf := ring.free_buffer()) is not None:
            n = _fill(reader, memoryview(buf))
            ring.publish(offset, buf, n)
            offset += n
            if n < CHUNK:
                return

    return produce


def copy_sparse(
    reader: Readable,
    path: str,
    *,
    progress: Callable[[int], None] | None = None,
    size: int | None = None,
    device: bool | None = None,
    durable: bool = True,
) -> int:
    """Stream `reader` into `path` sparsely; returns the bytes of stream written (logical size).

    The stream is read in a thread while this one writes. `durable=False` (a scratch file read back at once)
    neither fsyncs nor pushes pages out of the cache.
    """
    with SparseWriter(path, device=device) as writer:
        writer.truncate()
        # Once the target is open: a target that cannot be opened costs no read.
        feed = BufferRing(_read_chunks(reader), name="sparse-read", depth=BUFFERS, size=CHUNK)
        behind = WriteBehind(writer.fileno(), name="sparse-writeback") if durable else None
        try:
            for _, buf, n in feed:
                if n:
                    writer.write_chunk(buf, n)
                feed.release(buf)
                if progress is not None and n:
                    progress(writer.offset)
                if behind is not None:
                    behind.advance(writer.offset)
        finally:
            feed.close()
            if behind is not None:
                behind.close()
        total = writer.offset
        writer.finish(size, sync=durable)
    return total
