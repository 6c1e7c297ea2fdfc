"""Sparse writer: a byte stream written at increasing offsets, zero blocks left as holes, fsynced at the end."""

from __future__ import annotations

import errno
import logging
import mmap
import os
import stat
from collections.abc import Callable

from .. import mounts
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
#: Filesystems on local disks, where direct writes pay. Not network filesystems: there each direct write becomes
#: a synchronous round trip (upstream CDI saw qemu-img's cache=none crawl on NFS, CDI#1414); nor tmpfs, whose
#: page cache is the storage.
DIRECT_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "bcachefs"})
#: O_DIRECT needs offsets, lengths and memory aligned to the disk's logical block: 4 KiB suits 512-byte and
#: 4Kn disks alike.
DIRECT_ALIGN = 4096

log = logging.getLogger(__name__)


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


def direct_writes_suit(path: str) -> bool:
    """Whether the file at `path` (or to be created there) is on a filesystem where direct writes pay."""
    try:
        return mounts.mount_of(os.path.dirname(os.path.abspath(path))).fstype in DIRECT_FILESYSTEMS
    except OSError:
        return False


class DirectWrites:
    """O_DIRECT writes of aligned runs, copied first into a page-aligned buffer of our own (a bytearray's memory
    is not aligned): the data goes from there to the disk without passing through the page cache.

    Why: writing through the page cache takes a fresh page for every 4 KiB and frees it after writeback. On the
    VMs measured here the host takes freed pages back (free page reporting), so each fresh page faults in the
    host; the upload server spent 1.5 CPU-s per 2 GiB upload at its 750m limit that way, and 0.9 with direct
    writes (the extra copy included). A filesystem that refuses O_DIRECT, at open or at a write (EINVAL), gets
    the rest through the page cache as before."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._memory = mmap.mmap(-1, size)  # anonymous mappings are page-aligned
        self._view = memoryview(self._memory)

    @classmethod
    def open(cls, path: str, size: int) -> DirectWrites | None:
        """Direct writes to the existing file at `path` of up to `size` bytes each; None where the filesystem
        does not suit them (`direct_writes_suit`) or refuses O_DIRECT."""
        if not direct_writes_suit(path):
            return None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
        except OSError as err:
            log.debug("no direct writes to %s: %s", path, err)
            return None
        return cls(fd, size)

    @property
    def active(self) -> bool:
        return self._fd >= 0

    def write(self, data: memoryview, offset: int) -> int:
        """Write what can go direct (all of an aligned run up to the buffer's size); the bytes written, from
        the start of `data` (0: none, and after EINVAL never again)."""
        n = len(data)
        if self._fd < 0 or (offset | n) % DIRECT_ALIGN or n > len(self._view):
            return 0
        self._view[:n] = data
        done = 0
        try:
            while done < n:
                written = os.pwrite(self._fd, self._view[done:n], offset + done)
                done += written
                if written % DIRECT_ALIGN:  # a short write left the rest unaligned: the page cache takes it
                    break
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
            log.debug("direct writes refused (%s): writing through the page cache", err)
            os.close(self._fd)
            self._fd = -1
        return done

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._view.release()
        self._memory.close()


class SparseWriter:
    """Writes into a regular file (holes by not writing, then ftruncate) or a block device.

    On a block device a zero block is skipped only where the device already reads zeros (a fresh
    sparse-backed loop device does); elsewhere the zeros are written, so stale data never survives.
    With `direct`, a regular file's aligned data runs bypass the page cache (see DirectWrites) where the
    filesystem suits it.
    """

    def __init__(self, path: str, *, create: bool = True, device: bool | None = None, direct: bool = False) -> None:
        self.path = path
        # `device`: treat the path as a Block volume even when it is a file standing in for one.
        self.block_device = is_block_device(path) if device is None else device
        # A block device is opened read-write: zero blocks are checked against what it already holds.
        flags = os.O_RDWR if self.block_device else os.O_WRONLY | (os.O_CREAT if create else 0)
        self._fd = os.open(path, flags | os.O_CLOEXEC, 0o660)
        self._direct = DirectWrites.open(path, CHUNK) if direct and not self.block_device else None
        self.offset = 0
        self.written = 0

    @property
    def direct(self) -> bool:
        return self._direct is not None and self._direct.active

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
            self._direct = None
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
        done = self._direct.write(data, offset) if self._direct is not None else 0
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
    # A durable copy writes its data past the page cache; a scratch file is read back at once, from the cache.
    with SparseWriter(path, device=device, direct=durable) as writer:
        writer.truncate()
        # Once the target is open: a target that cannot be opened costs no read.
        feed = BufferRing(_read_chunks(reader), name="sparse-read", depth=BUFFERS, size=CHUNK)
        # What goes through the page cache (all of it without direct writes) is written back early.
        behind = WriteBehind(writer.fileno(), name="sparse-writeback") if durable and not writer.direct else None
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
