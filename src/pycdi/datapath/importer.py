"""The import pipeline (DESIGN §6): stream raw data sparsely, nbdkit for ranged qemu formats, else scratch."""

from __future__ import annotations

import logging
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, cast

from ..api.sizes import usable_space
from . import archive, nbdkit, nbdspool, qemu, sparse
from .checksum import HashingReader
from .errors import PermanentError, ScratchSpaceRequired
from .formats import QEMU_FORMATS, CappedReader, PeekReader, Readable, qcow2_header_problem, readinto, unwrap
from .progress import Progress
from .sources import blank
from .sources.base import Source, SourceStream
from .sources.http import HttpConfig, HttpSource
from .target import Target, free_space

log = logging.getLogger(__name__)
KUBEVIRT = "kubevirt"
ARCHIVE = "archive"
#: Above this round trip nbdkit's one-request-at-a-time reads (~2 MiB each) lose to one sequential download into
#: scratch plus a local convert: scratch costs about one extra local write and read of the data (~400 MB/s here),
#: i.e. ~5 ms per 2 MiB; half of that keeps us on the safe side of "never slower than scratch" (DESIGN §6).
NBDKIT_MAX_RTT = 0.0025
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<?xml")


@dataclass
class ImportRequest:
    """One import task, as the worker's environment describes it."""

    source: str  # "http" | "registry" | "s3" | "none" (blank)
    target: Target
    content_type: str = KUBEVIRT
    http: HttpConfig | None = None
    #: The source to read (registry, S3...); for "http" it is built from `http` when not given.
    reader: Source | None = None
    scratch_dir: str | None = None
    preallocation: bool = False
    checksum: str | None = None
    try_direct_io: bool = False
    #: None: decide from the source (ranges, no compression, no checksum) and the link's round trip;
    #: False never; True whenever possible.
    use_nbdkit: bool | None = None
    progress: Progress = field(default_factory=Progress)


@dataclass(frozen=True)
class ImportResult:
    preallocation_applied: bool
    path: str  # "stream", "nbdkit", "scratch", "archive", "blank"


def run(req: ImportRequest) -> ImportResult:
    """Perform the import; raises DataPathError subclasses with the user-facing message."""
    req.target.check()
    if req.source == "none":
        if req.content_type != KUBEVIRT:
            raise PermanentError("Cannot create empty disk with content type archive")
        applied = blank.create(req.target, preallocate=req.preallocation)
        req.progress.set(100.0)
        return ImportResult(applied, "blank")
    source = req.reader
    if source is None and req.source == "http" and req.http is not None:
        source = HttpSource(req.http)
    if source is None:
        raise PermanentError(f"Unknown data source: {req.source}")
    if req.content_type == ARCHIVE and req.target.block:
        raise PermanentError("archive content can only be imported into a Filesystem volume")
    return _from_source(req, source)


def _from_source(req: ImportRequest, source: Source) -> ImportResult:
    probe = source.probe()
    body = source.open()
    try:
        hashed = HashingReader(body, req.checksum) if req.checksum else None
        counted = _Counting(hashed or body, body, req.progress, high=100.0)
        if req.content_type == ARCHIVE:
            return _archive(req, counted, hashed)
        stream, kind, layers = unwrap(counted)
        if kind == "tar":
            stream, kind, layers = _first_tar_file(stream, layers)
        if kind in ("raw", "iso"):
            return _stream_raw(req, stream, counted, hashed, source.name)
        if kind not in QEMU_FORMATS:
            raise PermanentError(f"Invalid format {kind} for image {source.name}")
        problem = qcow2_header_problem(stream.peek()) if kind == "qcow2" else None
        if problem:
            raise PermanentError(f"Image {source.name} is invalid because it has {problem}")
        ranged = source.ranged() if probe.accepts_ranges and probe.size is not None and not layers else None
        if ranged is not None and hashed is None and nbdkit.available() and _want_nbdkit(req, ranged):
            body.close()
            return _via_nbdkit(req, ranged, QEMU_FORMATS[kind], source.name)
        return _via_scratch(req, stream, counted, hashed, QEMU_FORMATS[kind], source.name, image_size=probe.size)
    finally:
        body.close()


def _want_nbdkit(req: ImportRequest, ranged: HttpConfig) -> bool:
    """Read in place through nbdkit only on a link fast enough for it (DESIGN §6), unless told."""
    if req.use_nbdkit is not None:
        return req.use_nbdkit
    rtt = HttpSource(ranged).measure_rtt()
    fast = rtt is not None and rtt <= NBDKIT_MAX_RTT
    shown = "unmeasured" if rtt is None else f"{rtt * 1000:.2f} ms"
    log.info("link round trip %s: %s", shown, "reading in place with nbdkit" if fast else "downloading to scratch")
    return fast


class _Counting:
    """Reports the share of the transfer done (bytes of the transferred form over their total) as progress."""

    def __init__(self, inner: Readable, body: SourceStream, progress: Progress, high: float) -> None:
        self._inner = inner
        self._body = body
        self._progress = progress
        self.high = high

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self._report()
        return data

    def readinto(self, view: memoryview, /) -> int:
        """In place when the stream below can (an upload's socket): two copies of every byte fewer."""
        n = readinto(self._inner, view)
        self._report()
        return n

    def _report(self) -> None:
        if self._body.length:
            self._progress.set(self.high * self._body.count / self._body.length)


def _first_tar_file(stream: PeekReader, layers: list[str]) -> tuple[PeekReader, str, list[str]]:
    """kubevirt content inside a tar: the first regular file is the image (as upstream's format readers)."""
    tar = tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|")
    for member in tar:
        if member.isreg():
            inner = tar.extractfile(member)
            assert inner is not None
            reader, kind, more = unwrap(inner)
            return reader, kind, [*layers, "tar", *more]
    raise PermanentError("tar archive holds no file to import")


def _refuse_html_body(head: bytes, what: str) -> None:
    if head[:512].lstrip().lower().startswith(_HTML_STARTS):
        raise PermanentError(f"{what} is an HTML or XML document, not a disk image")


def _finish_hash(hashed: HashingReader | None, stream: Readable) -> None:
    if hashed is not None:
        while stream.read(1 << 20):
            pass
        hashed.drain()
        hashed.verify()


def _stream_raw(
    req: ImportRequest, stream: PeekReader, counted: _Counting, hashed: HashingReader | None, name: str
) -> ImportResult:
    """raw / iso (optionally compressed): decompress in-stream and write sparsely into the target, no scratch."""
    target = req.target
    _refuse_html_body(stream.peek(4096), name)
    usable = target.usable()
    capped = CappedReader(stream, usable, "image")
    path = target.disk_path
    try:
        size = sparse.copy_sparse(capped, path, device=target.block)
        _finish_hash(hashed, capped)
    except BaseException:
        if not target.block and os.path.exists(path):
            os.unlink(path)
        raise
    applied = _finalize_filesystem(req, path, size, usable) if not target.block else _finalize_block(req)
    req.progress.set(100.0)
    return ImportResult(applied, "stream")


def _finalize_filesystem(req: ImportRequest, path: str, size: int, usable: int) -> bool:
    """Grow disk.img to the usable size (never shrink), preallocate when asked, mode 0660."""
    if size < usable:
        qemu.resize(path, usable)
    if req.preallocation:
        # The whole file, not only the grown tail: the data was written sparsely, its holes must be allocated too.
        _fallocate(path)
    os.chmod(path, 0o660)
    return req.preallocation


def _finalize_block(req: ImportRequest) -> bool:
    """Preallocation on a Block volume: every block the import left unwritten is allocated (upstream: `-S 0`)."""
    if req.preallocation:
        blank.allocate_device(req.target.device, req.target.available())
    return req.preallocation


def _fallocate(path: str) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _convert_into_target(req: ImportRequest, src: str, fmt: str, low: float) -> bool:
    target = req.target
    dst = target.disk_path
    if not target.block and os.path.exists(dst):
        os.unlink(dst)
    qemu.convert(
        src,
        dst,
        src_format=fmt,
        progress=req.progress.scaled(low, 100.0),
        preallocate=req.preallocation,
        try_direct_io=req.try_direct_io,
        target_is_block=target.block,
    )
    if target.block:
        return _finalize_block(req)
    usable = target.usable() if not os.path.exists(dst) else _usable_after(req, dst)
    return _finalize_filesystem(req, dst, os.stat(dst).st_size, usable)


def _usable_after(req: ImportRequest, dst: str) -> int:
    """Usable size measured with the image in place: its own allocation counts as available again."""
    allocated = os.stat(dst).st_blocks * 512
    target = req.target
    free = min(free_space(target.volume_dir) + allocated, target.image_size or 1 << 62)
    return usable_space(target.overhead, free)


def _via_nbdkit(req: ImportRequest, config: HttpConfig, fmt: str, name: str) -> ImportResult:
    """A ranged HTTP image read in place by qemu-img through nbdkit: no scratch."""
    usable = req.target.usable()
    with nbdkit.serve(config) as uri:
        info = qemu.info(uri, fmt=fmt)
        qemu.validate(info, usable, name)
        try:
            with qemu.checking(uri, fmt, name):
                applied = _convert_into_target(req, uri, fmt, 0.0)
        except BaseException:
            if not req.target.block and os.path.exists(req.target.disk_path):
                os.unlink(req.target.disk_path)
            raise
    req.progress.set(100.0)
    return ImportResult(applied, "nbdkit")


def _via_scratch(
    req: ImportRequest, stream: PeekReader, counted: _Counting, hashed: HashingReader | None, fmt: str, url: str,
    *, image_size: int | None = None,
) -> ImportResult:
    """Download (decompressed) into scratch, inspect, then convert into the target.

    When the download is the image itself, of a known length, the scratch file is served to qemu-img over NBD
    as it fills (nbdspool): the convert runs alongside the download instead of after it."""
    if not req.scratch_dir or not os.path.isdir(req.scratch_dir):
        raise ScratchSpaceRequired()
    scratch = os.path.join(req.scratch_dir, "tmpimage")
    capped = CappedReader(stream, free_space(req.scratch_dir), "downloaded image")
    # Only when the source says the transfer IS the image: a registry's stream length counts its layers, not the disk.
    length = image_size if stream.inner is counted and image_size == counted._body.length else None
    target = req.target

    def download(reader: Readable, advance: Callable[[int], None] | None = None) -> None:
        # Not durable: the scratch file is read back at once and deleted, an fsync would only wait for the disk.
        sparse.copy_sparse(reader, scratch, progress=advance, durable=False)
        _finish_hash(hashed, stream)

    try:
        try:
            if length:
                counted.high = 0.0  # the convert reports, from 0: it moves with the download
                fetch = nbdspool.RangeFetcher(req.http) if req.http is not None else None
                with nbdspool.serve(scratch, length, download, capped, fetch) as served:
                    try:
                        info = qemu.info(served.uri, fmt=fmt, timeout=None)
                        qemu.validate(info, target.usable(), url)
                        with qemu.checking(served.uri, fmt, url, timeout=None):
                            applied = _convert_into_target(req, served.uri, fmt, 0.0)
                        served.wait()
                    except BaseException as err:
                        # A failed download shows in qemu-img as read errors: its own error is the one to tell.
                        if served.error is not None and not isinstance(served.error, nbdspool.Cancelled):
                            raise served.error from err
                        raise
            else:
                counted.high = 50.0
                download(capped)
                info = qemu.info(scratch, fmt=fmt)
                qemu.validate(info, target.usable(), url)
                with qemu.checking(scratch, fmt, url):
                    applied = _convert_into_target(req, scratch, fmt, 50.0)
        except BaseException:
            if not target.block and os.path.exists(target.disk_path):
                os.unlink(target.disk_path)
            raise
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    req.progress.set(100.0)
    return ImportResult(applied, "scratch")


def _archive(req: ImportRequest, counted: _Counting, hashed: HashingReader | None) -> ImportResult:
    """archive content: a (compressed) tar extracted into the volume, safely."""
    stream, kind, _layers = unwrap(counted)
    if kind != "tar":
        raise PermanentError(f"archive content must be a tar archive, found {kind}")
    archive.extract(stream, req.target.volume_dir, req.target.usable())
    _finish_hash(hashed, stream)
    req.progress.set(100.0)
    return ImportResult(False, "archive")
