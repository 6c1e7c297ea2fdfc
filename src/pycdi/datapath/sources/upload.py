"""The upload source: an HTTP request body handed from the upload server's event loop to the import pipeline's
thread through a bounded buffer, so the body streams through and is never held whole in memory."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from ..errors import DataPathError, TransientError
from .base import Probe

#: Bytes in flight between the request and the pipeline: enough to keep both busy, small next to the image.
DEFAULT_LIMIT = 8 << 20
NAME = "upload"


class ConsumerGone(Exception):
    """The pipeline stopped reading (it finished or failed): there is nobody left to feed."""


class StreamFeed:
    """Bytes from one event loop (the producer, `put`) to one blocking reader (the consumer, `read`).

    The producer waits while `limit` bytes are queued; the consumer blocks until data, the end or an error
    arrives. Either side may stop: `finish`/`abort` end the stream, `close` tells the producer to stop feeding.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = DEFAULT_LIMIT) -> None:
        self._loop = loop
        self._limit = limit
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._head = 0  # bytes of _chunks[0] already read
        self._queued = 0
        self._eof = False
        self._error: DataPathError | None = None
        self._closed = False
        self._space = asyncio.Event()

    # ---- producer (the event loop) ----------------------------------------------------------------

    async def put(self, data: bytes) -> None:
        """Queue `data`, waiting for room; raises ConsumerGone once the reader closed the feed."""
        if not data:
            return
        while True:
            with self._cond:
                if self._closed:
                    raise ConsumerGone()
                if self._queued < self._limit:
                    self._chunks.append(data)
                    self._queued += len(data)
                    self._cond.notify()
                    return
                self._space.clear()
            await self._space.wait()

    def finish(self) -> None:
        """The body ended normally: the reader sees EOF once the queue is drained."""
        with self._cond:
            self._eof = True
            self._cond.notify()

    def abort(self, error: DataPathError) -> None:
        """The body broke (client gone, malformed): the reader's next read raises `error`."""
        with self._cond:
            self._error = error
            self._cond.notify()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    # ---- consumer (the pipeline's thread) ---------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (at least one unless at the end), blocking until some arrive."""
        with self._cond:
            while not self._chunks and not self._eof and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            if not self._chunks:
                return b""
            parts: list[bytes] = []
            got = 0
            want = size if size > 0 else 1 << 20
            while self._chunks and got < want:
                chunk = self._chunks[0]
                take = min(want - got, len(chunk) - self._head)
                # Whole chunks are passed on as they are: one copy at most, in the join below.
                parts.append(chunk if self._head == 0 and take == len(chunk) else
                             chunk[self._head:self._head + take])
                got += take
                self._head += take
                if self._head == len(chunk):
                    self._chunks.popleft()
                    self._head = 0
            self._queued -= got
            if self._queued < self._limit:
                self._wake()
            return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """The reader is done: drop what is queued and release a waiting producer."""
        with self._cond:
            self._closed = True
            self._chunks.clear()
            self._queued = 0
        self._wake()

    def _wake(self) -> None:
        """Let a producer waiting for room re-check (from the reader's thread)."""
        try:
            self._loop.call_soon_threadsafe(self._space.set)
        except RuntimeError:
            pass  # the loop is closed: no producer is waiting on it any more


class UploadStream:
    """The body as the pipeline reads it (`SourceStream`): the count and length drive progress."""

    def __init__(self, feed: StreamFeed, length: int | None) -> None:
        self._feed = feed
        self.length = length
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._feed.read(size)
        self.count += len(data)
        if not data and self.length is not None and self.count < self.length:
            raise TransientError(f"upload ended after {self.count} of {self.length} bytes")
        return data

    def close(self) -> None:
        self._feed.close()


class UploadSource:
    """One upload request's body as an import `Source`: read once, in order; no ranges, so no nbdkit."""

    def __init__(self, feed: StreamFeed, length: int | None, content_type: str = "") -> None:
        self._feed = feed
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
        return UploadStream(self._feed, self._length)

    def ranged(self) -> None:
        return None
