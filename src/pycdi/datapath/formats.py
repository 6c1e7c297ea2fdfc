"""Format sniffing by magic bytes and streaming decompression (gz, xz, zst) with a hard output cap."""

from __future__ import annotations

import fcntl
import lzma
import os
import shutil
import struct
import subprocess
import threading
import weakref
from typing import IO, TYPE_CHECKING, Protocol, cast

from isal import isal_zlib

if TYPE_CHECKING:
    import zstandard

from .errors import PermanentError

#: Enough to see every signature we know (tar's `ustar` sits at 257, ISO's `CD001` at 32769).
SNIFF_BYTES = 64 * 1024
COMPRESSIONS = frozenset({"gz", "xz", "zst"})
#: Formats qemu-img must convert; raw and iso are copied as they are.
QEMU_FORMATS = {"qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx"}
_READ = 1 << 20
#: isal_zlib.error is declared as a value in its stub; this is the class.
_ISAL_ERROR = cast(type[BaseException], isal_zlib.error)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def readinto(reader: Readable, view: memoryview) -> int:
    """Fill (part of) `view` from `reader`: in place when the reader can (no copy of every byte through a new
    bytes object, which is a good share of a decompressor's time), else by a read and a copy."""
    direct = getattr(reader, "readinto", None)
    if direct is not None:
        return int(direct(view))
    data = reader.read(len(view))
    view[: len(data)] = data
    return len(data)


def sniff(head: bytes) -> str:
    """The outermost format of a stream from its first bytes: a compression, an image format, tar, iso or raw."""
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zst"
    if head.startswith(b"QFI\xfb"):
        return "qcow2"
    if head.startswith((b"KDMV", b"# Disk DescriptorFile")):
        return "vmdk"
    if len(head) >= 68 and head[64:68] == b"\x7f\x10\xda\xbe":
        return "vdi"
    if head.startswith(b"vhdxfile"):
        return "vhdx"
    # A dynamic VHD starts with a copy of its footer; a fixed one carries it only at the end (raw-like).
    if head.startswith(b"conectix"):
        return "vhd"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if len(head) >= 32774 and head[32769:32774] == b"CD001":
        return "iso"
    return "raw"


def qcow2_header_problem(head: bytes) -> str | None:
    """Why a qcow2 header is unsafe to hand to qemu (backing file, external data file), read before qemu opens it."""
    if len(head) < 32 or not head.startswith(b"QFI\xfb"):
        return None
    version, backing_offset, backing_size = struct.unpack(">IQI", head[4:20])
    if backing_offset and backing_size:
        end = backing_offset + backing_size
        name = head[backing_offset:end] if end <= len(head) else b""
        return f"backing file {name.decode(errors='replace') or '(unreadable)'}"
    if version >= 3 and len(head) >= 80:
        (incompatible,) = struct.unpack(">Q", head[72:80])
        if incompatible & (1 << 2):
            return "an external data file"
    return None


class PeekReader:
    """A stream whose first bytes can be looked at before they are consumed."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self._head = b""

    @property
    def inner(self) -> Readable:
        """The stream this one reads from."""
        return self._inner

    def peek(self, size: int = SNIFF_BYTES) -> bytes:
        while len(self._head) < size:
            chunk = self._inner.read(size - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return self._head[:size]

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                data, self._head = self._head, b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._inner.read(size)

    def readinto(self, view: memoryview, /) -> int:
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return readinto(self._inner, view)


class GzipReader:
    """gzip with ISA-L (3-4x stdlib zlib here); concatenated members are one stream, as `gzip -dc` treats them.

    Output per call is bounded (`max_length`), so a bomb never inflates more than one read in memory.
    """

    name = "gz"

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self._d = isal_zlib.decompressobj(wbits=31)
        self._buf = b""
        self._in_member = False

    def read(self, size: int = -1, /) -> bytes:
        want = _READ if size is None or size <= 0 else size
        while True:
            data = self._d.unconsumed_tail or self._buf
            self._buf = b""
            if not data:
                data = self._inner.read(_READ)
                if not data:
                    if self._in_member:
                        raise PermanentError("gzip stream is truncated")
                    return b""
            self._in_member = True
            try:
                out = self._d.decompress(data, want)
            except _ISAL_ERROR as err:
                raise PermanentError(f"gzip stream is corrupt: {err}") from err
            if self._d.eof:
                rest = self._d.unused_data
                self._d = isal_zlib.decompressobj(wbits=31)
                self._in_member = False
                # Trailing zero padding after the last member is ignored, as gzip does.
                self._buf = b"" if not rest.strip(b"\0") else rest
            if out:
                return out


class XzReader:
    """xz via liblzma, output bounded per call; concatenated streams (and their zero padding) are followed."""

    name = "xz"

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self._d = lzma.LZMADecompressor()
        self._buf = b""
        self._in_stream = False

    def read(self, size: int = -1, /) -> bytes:
        want = _READ if size is None or size <= 0 else size
        while True:
            data = b""
            if self._d.needs_input:
                data, self._buf = self._buf, b""
                if not data:
                    data = self._inner.read(_READ)
                    if not data:
                        if self._in_stream:
                            raise PermanentError("xz stream is truncated")
                        return b""
            self._in_stream = True
            try:
                out = self._d.decompress(data, want)
            except lzma.LZMAError as err:
                raise PermanentError(f"xz stream is corrupt: {err}") from err
            if self._d.eof:
                rest = self._d.unused_data.lstrip(b"\0")
                self._d = lzma.LZMADecompressor()
                self._in_stream = False
                self._buf = rest
            if out:
                return out


#: xz's block header flags: the block's compressed / uncompressed size is stored in it.
_XZ_SIZES_IN_HEADER = 0x40 | 0x80
_XZ_STREAM_HEADER = 12
#: Pipe capacity asked of the kernel (its default limit, /proc/sys/fs/pipe-max-size): fewer, larger reads.
_PIPE_SIZE = 1 << 20


def xz_blocks_parallel(head: bytes) -> bool:
    """Whether an xz stream can be decoded on several cores: `xz -T` writes each block's sizes into its header,
    which is what lets the decoder hand blocks to threads (a single-threaded encoder leaves them out)."""
    if len(head) < _XZ_STREAM_HEADER + 2 or not head.startswith(b"\xfd7zXZ\x00"):
        return False
    return head[_XZ_STREAM_HEADER] != 0 and bool(head[_XZ_STREAM_HEADER + 1] & _XZ_SIZES_IN_HEADER)


def _feed(inner: Readable, sink: IO[bytes], failure: list[BaseException]) -> None:
    """Copy the compressed stream into xz's stdin (a thread: xz's stdout is read meanwhile)."""
    try:
        while data := inner.read(_READ):
            view = memoryview(data)
            while view:
                view = view[sink.write(view) or 0 :]
    except BrokenPipeError:
        pass  # xz stopped reading: its exit status and stderr tell why
    except BaseException as err:  # a network error: raised to the reader in place of xz's view of it
        failure.append(err)
    finally:
        try:
            sink.close()
        except BrokenPipeError:
            pass


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):  # stdin is the feeding thread's to close
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass


class XzProcessReader:
    """xz through `xz -T0 -dc`: liblzma in Python decodes on one core, xz decodes a multi-block stream's blocks
    on all of them (twice as fast here). Concatenated streams and padding are xz's own business."""

    name = "xz"

    def __init__(self, inner: Readable) -> None:
        self._proc = subprocess.Popen(
            ["xz", "-T0", "-dc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
            except OSError:
                pass  # a smaller pipe only means more reads
        self._out = self._proc.stdout.fileno()
        self._failure: list[BaseException] = []
        self._feeder = threading.Thread(
            target=_feed, args=(inner, self._proc.stdin, self._failure), name="xz-feed", daemon=True
        )
        self._feeder.start()
        # Abandoned half way (a bomb stopped by CappedReader, an error): xz is killed when the reader goes.
        self._finalizer = weakref.finalize(self, _reap, self._proc)
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        if self._done:
            return b""
        data = os.read(self._out, _READ if size is None or size <= 0 else size)
        if not data:
            self._finish()
        return data

    def readinto(self, view: memoryview, /) -> int:
        if self._done or not len(view):
            return 0
        n = os.readv(self._out, [view])
        if not n:
            self._finish()
        return n

    def _finish(self) -> None:
        """xz's output ended: its exit status (or the feeding side's error) says whether the stream was whole."""
        self._done = True
        self._feeder.join()
        self._proc.wait()
        stderr = self._proc.stderr.read().decode(errors="replace").strip() if self._proc.stderr else ""
        self._finalizer()
        if self._failure:
            raise self._failure[0]
        if self._proc.returncode != 0:
            if "Unexpected end of input" in stderr:
                raise PermanentError("xz stream is truncated")
            raise PermanentError(f"xz stream is corrupt: {stderr.removeprefix('xz: (stdin): ')}")

    def close(self) -> None:
        self._finalizer()


class ZstdReader:
    """zstd via python-zstandard's streaming reader, across concatenated frames."""

    name = "zst"

    def __init__(self, inner: Readable) -> None:
        # Imported here: 20 ms of every worker's start, for the imports that are zstd only.
        import zstandard

        source = cast(IO[bytes], inner)
        self._error: type[zstandard.ZstdError] = zstandard.ZstdError
        self._r = zstandard.ZstdDecompressor().stream_reader(source, read_size=_READ, read_across_frames=True)

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._r.read(_READ if size < 0 else size)
        except self._error as err:
            raise PermanentError(f"zstd stream is corrupt: {err}") from err

    def readinto(self, view: memoryview, /) -> int:
        try:
            return int(self._r.readinto(view))
        except self._error as err:
            raise PermanentError(f"zstd stream is corrupt: {err}") from err


class CappedReader:
    """Stops a stream that yields more than `cap` bytes: a decompression bomb ends at the target's size."""

    def __init__(self, inner: Readable, cap: int, what: str = "decompressed image") -> None:
        self._inner = inner
        self._cap = cap
        self._what = what
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self._add(len(data))
        return data

    def readinto(self, view: memoryview, /) -> int:
        n = readinto(self._inner, view)
        self._add(n)
        return n

    def _add(self, n: int) -> None:
        self.count += n
        if self.count > self._cap:
            raise PermanentError(
                f"{self._what} is larger than the reported available storage {self._cap}: stopped after "
                f"{self.count} bytes. A larger PVC is required"
            )


def decompressor(kind: str, inner: Readable, head: bytes = b"") -> Readable:
    """A reader of the decompressed stream; `head` (the stream's first bytes) picks xz's decoder."""
    if kind == "gz":
        return GzipReader(inner)
    if kind == "xz":
        if xz_blocks_parallel(head) and shutil.which("xz"):
            return XzProcessReader(inner)
        return XzReader(inner)
    if kind == "zst":
        return ZstdReader(inner)
    raise ValueError(kind)


def unwrap(stream: Readable, max_layers: int = 3) -> tuple[PeekReader, str, list[str]]:
    """Peel compression layers: the decompressed stream, its inner format, and the layers removed (outer first)."""
    reader = PeekReader(stream)
    layers: list[str] = []
    while True:
        head = reader.peek()
        kind = sniff(head)
        if kind not in COMPRESSIONS:
            return reader, kind, layers
        if len(layers) >= max_layers:
            raise PermanentError(f"too many nested compression layers: {', '.join(layers)}")
        layers.append(kind)
        reader = PeekReader(decompressor(kind, reader, head))
