"""The upload source: an HTTP request body read by the import pipeline straight from the upload server's
connection (the server's `BodyReader`), so the body streams through and is never held whole in memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import TransientError
from .base import Probe

if TYPE_CHECKING:
    from .http import HttpConfig

NAME = "upload"
#: What a read without a size asks for.
CHUNK = 1 << 20


class BodyReader(Protocol):
    """A request body as the server hands it over: `readinto` fills (part of) a buffer, 0 at the end; a broken
    body raises a DataPathError. `close`: the pipeline stopped reading."""

    def readinto(self, view: memoryview, /) -> int: ...

    def close(self) -> None: ...


class UploadStream:
    """The body as the pipeline reads it (`SourceStream`): the count and length drive progress. Reads fill the
    buffer asked for (or reach the end), so the pipeline's layers above see few, full reads."""

    def __init__(self, body: BodyReader, length: int | None) -> None:
        self._body = body
        self.length = length
        self.count = 0
        self._buf = bytearray()

    def readinto(self, view: memoryview, /) -> int:
        """Fill `view` from the body in place (the fast path: no bytes object per read)."""
        size = len(view)
        n = 0
        while n < size:
            got = self._body.readinto(view[n:] if n else view)
            if not got:
                break
            n += got
        self.count += n
        if n < size and self.length is not None and self.count < self.length:
            raise TransientError(f"upload ended after {self.count} of {self.length} bytes")
        return n

    def read(self, size: int = -1, /) -> bytes:
        want = size if size > 0 else CHUNK
        if len(self._buf) < want:
            self._buf = bytearray(want)
        view = memoryview(self._buf)[:want]
        n = self.readinto(view)
        return view[:n].tobytes()

    def close(self) -> None:
        self._body.close()


class UploadSource:
    """One upload request's body as an import `Source`: read once, in order; no ranges, so no nbdkit."""

    def __init__(self, body: BodyReader, length: int | None, content_type: str = "") -> None:
        self._body = body
        self._length = length
        self._content_type = content_type
        self._opened = False

    @property
    def name(self) -> str:
        return NAME

    def probe(self) -> Probe:
        return Probe(self._length, False, self._content_type, NAME)

    def open(self) -> UploadStream:
        if self._opened:
            raise RuntimeError("an upload body can be read only once")
        self._opened = True
        return UploadStream(self._body, self._length)

    def ranged(self) -> HttpConfig | None:
        return None  # read once, in order: nothing to read by ranges
