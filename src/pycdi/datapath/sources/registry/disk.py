"""The containerDisk's disk file, streamed out of the image's layers: the last layer first, whiteouts honoured,
every blob's digest and size verified as it is read."""

from __future__ import annotations

import hashlib
import http.client
import logging
import posixpath
from collections.abc import Callable
from typing import Protocol

from ...errors import PermanentError, TransientError
from ...formats import COMPRESSIONS, PeekReader, Readable, decompressor, sniff
from ..http import classify
from .manifest import Descriptor, check_digest
from .tarstream import TarStream

log = logging.getLogger(__name__)
#: upstream's containerDiskImageDir: the disk is the one regular file under /disk in the image.
DISK_DIR = "disk"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_READ = 1 << 20


class RawBlob(Protocol):
    """An open blob body (an HTTP response, or a file in tests)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


#: Opens a layer's blob; the string is how messages name the layer.
BlobOpener = Callable[[Descriptor, str], RawBlob]


class BlobReader:
    """A blob's bytes, counted and hashed; a body longer or shorter than its descriptor, or with another digest,
    is an error (short: the connection broke, transient; otherwise the registry holds other bytes, permanent)."""

    def __init__(self, raw: RawBlob, desc: Descriptor, what: str) -> None:
        algorithm, _ = check_digest(desc.digest, what)
        self._raw = raw
        self._desc = desc
        self._what = what
        self._hash = hashlib.new(algorithm)
        self._eof = False
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        if self._eof:
            return b""
        try:
            data = self._raw.read(_READ if size < 0 else min(size, _READ))
        except (OSError, http.client.HTTPException) as err:
            raise classify(err, self._what) from err
        if not data:
            self._eof = True
            if self.count < self._desc.size:
                raise TransientError(f"{self._what}: the connection closed after {self.count} of "
                                     f"{self._desc.size} bytes")
            return b""
        self.count += len(data)
        if self.count > self._desc.size:
            raise PermanentError(f"{self._what} is larger than the {self._desc.size} bytes its manifest says")
        self._hash.update(data)
        return data

    def finish(self) -> None:
        """Read what is left and check the digest."""
        while self.read(_READ):
            pass
        got = f"{self._hash.name}:{self._hash.hexdigest()}"
        if got != self._desc.digest:
            raise PermanentError(f"{self._what} does not match its digest: expected {self._desc.digest}, got {got}")

    def close(self) -> None:
        self._raw.close()


def clean(name: str) -> str:
    """A member name as a path from the image root: `./disk//a.img` -> `disk/a.img`, the root is ""."""
    return posixpath.normpath("/" + name).lstrip("/")


def _in_disk_dir(path: str) -> bool:
    return path.startswith(DISK_DIR + "/")


def _ancestors(path: str) -> list[str]:
    """Proper ancestors, root ("") included: `disk/a/b` -> ["", "disk", "disk/a"]."""
    parts = path.split("/")
    return [""] + ["/".join(parts[:i]) for i in range(1, len(parts))]


class Upper:
    """What the layers above the one being read say about the paths below them (only /disk and its ancestors are
    kept: the rest of an image may hold any number of files)."""

    def __init__(self) -> None:
        self.present: set[str] = set()  # any entry: hides the same path below
        self.non_dirs: set[str] = set()  # a file, link...: hides everything below it
        self.removed: set[str] = set()  # `.wh.<name>`
        self.opaque: set[str] = set()  # `.wh..wh..opq`: a directory whose lower content is hidden

    @staticmethod
    def _relevant(path: str) -> bool:
        return path in ("", DISK_DIR) or _in_disk_dir(path)

    def note(self, path: str, is_dir: bool) -> bool:
        """Record one entry of a layer; True when it is a whiteout (which is no file of its own)."""
        base = posixpath.basename(path)
        if base.startswith(_WHITEOUT):
            parent = posixpath.dirname(path)
            if base == _OPAQUE:
                if self._relevant(parent):
                    self.opaque.add(parent)
            elif not base.startswith(_WHITEOUT + _WHITEOUT):  # other .wh..wh.* names are AUFS bookkeeping
                target = posixpath.join(parent, base[len(_WHITEOUT) :])
                if self._relevant(target):
                    self.removed.add(target)
            return True
        if self._relevant(path):
            self.present.add(path)
            if not is_dir:
                self.non_dirs.add(path)
        return False

    def merge(self, layer: Upper) -> None:
        self.present |= layer.present
        self.non_dirs |= layer.non_dirs
        self.removed |= layer.removed
        self.opaque |= layer.opaque

    def hides(self, path: str) -> bool:
        """Whether an entry at `path` in a lower layer is hidden by the layers above."""
        if path in self.present or path in self.removed:
            return True
        return any(a in self.removed or a in self.opaque or a in self.non_dirs for a in _ancestors(path))


class DiskStream:
    """The disk file's bytes (a SourceStream); `count` / `length` are layer bytes, which drive progress.

    Layers are read from the last one down, each streamed through its tar until a visible regular file under
    disk/ shows up: a later layer's disk replaces an earlier one's, and whiteouts hide what is below them. Once
    the disk is read, the rest of its layer is read too: a second file under disk/ is an error (upstream wants
    exactly one), and the layer's digest is checked. The layers below it are not read at all.
    """

    def __init__(self, layers: list[Descriptor], open_blob: BlobOpener, name: str) -> None:
        self._layers = layers
        self._open_blob = open_blob
        self._name = name
        self._done = 0  # bytes of the layers fully read
        self._blob: BlobReader | None = None
        self._tar: TarStream | None = None
        self._upper = Upper()
        self._layer_marks = Upper()
        self._disk_path = ""
        self._finished = False
        self.length: int | None = None
        self.count = 0
        self._find()

    def _layer_name(self, index: int, desc: Descriptor) -> str:
        return f"layer {index + 1}/{len(self._layers)} ({desc.digest}) of {self._name}"

    def _open_layer(self, index: int) -> TarStream:
        desc = self._layers[index]
        what = self._layer_name(index, desc)
        self._blob = BlobReader(self._open_blob(desc, what), desc, what)
        self.length = self._done + desc.size
        peek = PeekReader(self._blob)
        kind = sniff(peek.peek())
        # The bytes decide, not the media type: layers are gzip, zstd or plain tars whatever they are called.
        body: Readable = decompressor(kind, peek) if kind in COMPRESSIONS else peek
        return TarStream(body, what)

    def _find(self) -> None:
        try:
            for index in range(len(self._layers) - 1, -1, -1):
                self._tar = self._open_layer(index)
                self._layer_marks = Upper()
                while (entry := self._tar.next()) is not None:
                    path = clean(entry.name)
                    if self._layer_marks.note(path, entry.isdir()):
                        continue
                    if not _in_disk_dir(path) or entry.isdir() or self._upper.hides(path):
                        continue
                    if not entry.isreg():
                        raise PermanentError(f"{path} in {self._name} is a {entry.kind()}; the disk image must be a "
                                             "regular file")
                    self._disk_path = path
                    log.info("disk image %s found in %s (%d bytes)", path, self._layer_name(index, self._layers[index]),
                             entry.size)
                    return
                self._end_layer()
                self._upper.merge(self._layer_marks)
            raise PermanentError(f"no disk image found under /disk in {self._name} (Failed to find VM disk image file "
                                 "in the container image)")
        except BaseException:
            self.close()
            raise

    def _end_layer(self) -> None:
        """The current layer is read to its end: verify it, account for it, close it."""
        assert self._blob is not None
        self._blob.finish()
        self._done += self._blob.count
        self.count = self._done
        self._blob.close()
        self._blob = None

    def _finish(self) -> None:
        """After the disk's data: no second file under disk/ in the rest of the layer, and the digest holds."""
        assert self._tar is not None
        while (entry := self._tar.next()) is not None:
            path = clean(entry.name)
            if self._layer_marks.note(path, entry.isdir()):
                continue
            if _in_disk_dir(path) and not entry.isdir() and not self._upper.hides(path):
                raise PermanentError(f"{self._name} has more than one file under /disk ({self._disk_path}, {path}); "
                                     "a containerDisk holds exactly one")
        self._end_layer()
        self._finished = True

    def read(self, size: int = -1, /) -> bytes:
        if self._finished:
            return b""
        assert self._tar is not None and self._blob is not None
        data = self._tar.read(size)
        if data:
            self.count = self._done + self._blob.count
            return data
        self._finish()
        return b""

    def close(self) -> None:
        if self._blob is not None:
            self._blob.close()
            self._blob = None
