"""Blocking HTTP/1.1 for the upload server: request heads, bodies read in place into the caller's buffers (by
length or chunked), short plain-text answers, the lingering close of an answer given before its body was read."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import cast

from .. import http1 as wire_rules

#: How long an answer given before its request body was read waits for the rest of that body, read and dropped,
#: before closing (aiohttp's lingering time): a client still sending reads its answer instead of a reset.
LINGER = 10.0
_DRAIN = 256 << 10


#: A malformed request head or chunked body: answered 400, then the connection is closed.
BadRequest = wire_rules.BadMessage


class Cut(ConnectionError):
    """The client closed the connection inside a request."""


class Wire:
    """A connected (TLS) socket and a small buffer for heads and chunk lines; body bytes go around the buffer,
    straight from the socket into the reader's memory."""

    def __init__(self, sock: socket.socket, *, local: bool = False) -> None:
        self.sock = sock
        #: Accepted on the local socket (embedded clusters): its peer is `pycdi up`'s proxy, no certificate.
        self.local = local
        #: TLS reads called straight (`SSLSocket.read(n, buffer)`): recv_into is one more Python call per record.
        self.ssl_read = cast(Callable[[int, memoryview], int], sock.read) if isinstance(sock, ssl.SSLSocket) else None
        self._buf = bytearray(wire_rules.MAX_HEAD)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0

    def _more(self) -> int:
        """Read into the buffer (what is pending moved to its front first); 0 at the end of the stream."""
        if self._start:
            pending = self._end - self._start
            self._buf[:pending] = self._view[self._start:self._end]
            self._start, self._end = 0, pending
        if self._end == len(self._buf):
            raise BadRequest("the request head is too large")
        got = self.sock.recv_into(self._view[self._end:])
        self._end += got
        return got

    def read_until(self, mark: bytes, *, at_start: bool = False) -> bytes | None:
        """The bytes before `mark` (consumed with it); None when the stream ends with nothing pending and
        `at_start` (a client closing an idle connection), else an end inside is a Cut."""
        scanned = 0  # bytes after _start known to hold no `mark` start (_more may move _start)
        while True:
            found = self._buf.find(mark, self._start + scanned, self._end)
            if found >= 0:
                data = bytes(self._view[self._start:found])
                self._start = found + len(mark)
                return data
            scanned = max(0, self._end - self._start - len(mark) + 1)
            if not self._more():
                if at_start and self._start == self._end:
                    return None
                raise Cut("the connection closed inside a request")

    def take_pending(self, view: memoryview) -> int:
        """Bytes read past the head (or a chunk line) into `view`: what a body read must use first."""
        n = min(self._end - self._start, len(view))
        if n:
            view[:n] = self._view[self._start:self._start + n]
            self._start += n
        return n

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


class Body:
    """One request's body, to its end by Content-Length or chunked framing; `readinto` fills the caller's buffer
    from the socket, without a copy through a bytes object."""

    def __init__(self, wire: Wire, length: int | None, chunked: bool) -> None:
        self._wire = wire
        self._chunked = chunked
        #: Bytes left of the body (by length) or of the current chunk.
        self._left = 0 if chunked else (length or 0)
        self._in_chunk = False  # a chunk's data was read: its CRLF comes before the next size line
        self.done = not chunked and not length
        #: A read failed (closed, malformed): the connection is unusable.
        self.broken = False
        self.received = 0

    def readinto(self, view: memoryview) -> int:
        """Fill `view`, or up to the end of the body (0 when at the end); raises Cut, BadRequest or OSError.

        The hot loop of an upload: one TLS record (16 KiB) per turn, read straight into the caller's buffer."""
        size = len(view)
        n = 0
        wire = self._wire
        ssl_read = wire.ssl_read
        try:
            while n < size and not self.done:
                if self._chunked and not self._left:
                    self._next_chunk()
                    continue
                want = min(size - n, self._left)
                part = view[n:] if n else view
                if wire._start < wire._end:  # read with the head (or a chunk line): those bytes come first
                    got = wire.take_pending(part[:want])
                else:
                    got = ssl_read(want, part) if ssl_read is not None else wire.sock.recv_into(part, want)
                    if not got:
                        raise Cut(f"the client closed the connection after {self.received + n} bytes of the body")
                n += got
                self._left -= got
                if not self._left and not self._chunked:
                    self.done = True
        except BaseException:
            self.broken = True
            raise
        finally:
            self.received += n
        return n

    def _next_chunk(self) -> None:
        if self._in_chunk and self._wire.read_until(b"\r\n") != b"":
            raise BadRequest("a chunk of the body does not end with CRLF")
        size = wire_rules.chunk_size(self._wire.read_until(b"\r\n") or b"")
        self._in_chunk = True
        self._left = size
        if size == 0:
            while self._wire.read_until(b"\r\n"):  # trailer fields, up to the empty line
                pass
            self.done = True

    def drain(self, deadline: float) -> bool:
        """Read and drop the rest of the body until `deadline` (monotonic); True when it ended in time."""
        scratch = memoryview(bytearray(_DRAIN))
        sock = self._wire.sock
        try:
            while not self.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                sock.settimeout(left)
                self.readinto(scratch)
        except (OSError, BadRequest):
            return False
        return True


@dataclass
class Request:
    method: str
    path: str
    version: str
    #: Field names lower-cased; repeated fields joined with ", ".
    headers: dict[str, str]
    body: Body

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and "transfer-encoding" not in self.headers else None

    @property
    def content_type(self) -> str:
        """The media type alone, lower-cased (aiohttp's `content_type`): parameters dropped."""
        return self.headers.get("content-type", "application/octet-stream").split(";", 1)[0].strip().lower()

    @property
    def keep_alive(self) -> bool:
        return wire_rules.keep_alive(self.version, self.headers.get("connection"))


def read_request(wire: Wire) -> Request | None:
    """The next request's head and its body's framing; None when the client closed the idle connection."""
    head = wire.read_until(b"\r\n\r\n", at_start=True)
    while head is not None and head.startswith(b"\r\n"):  # empty lines before a request are allowed
        head = head[2:]
    if head is None:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = wire_rules.parse_request_line(lines[0])
    fields = wire_rules.parse_headers(lines[1:])
    framing = wire_rules.Framing.of(fields, version)
    headers: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Request(method, wire_rules.target_path(target), version, headers,
                   Body(wire, framing.length, framing.chunked))


class Exchange:
    """One request on a connection and its answer: 100-continue when the body is wanted, the answer, and whether
    the connection can take another request afterwards."""

    def __init__(self, wire: Wire, request: Request) -> None:
        self.wire = wire
        self.request = request
        self.answered = False
        self._continued = False

    def want_body(self) -> None:
        """Tell a client waiting for it (Expect: 100-continue) to send the body."""
        expect = self.request.headers.get("expect", "").lower()
        if expect == "100-continue" and not self._continued and self.request.version != "HTTP/1.0":
            self._continued = True
            self.wire.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def respond(self, status: int, text: str | None = None) -> None:
        """The answer: `text` as text/plain (none for HEAD), or an empty body."""
        body = self.request.body
        close = not self.request.keep_alive or not body.done
        payload = text.encode() if text is not None else b""
        lines = [wire_rules.status_line(status).rstrip("\r\n"), f"Date: {formatdate(usegmt=True)}"]
        if text is not None:
            lines.append("Content-Type: text/plain; charset=utf-8")
        lines.append(f"Content-Length: {len(payload)}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.answered = True
        self.wire.send(head if self.request.method == "HEAD" else head + payload)

    def finish(self) -> bool:
        """After the answer: True when the connection can carry another request. An unread body is drained
        (for LINGER seconds at most) so the client reads the answer; the connection then closes."""
        body = self.request.body
        if body.broken:
            return False
        if not body.done:
            body.drain(time.monotonic() + LINGER)
            return False
        return self.request.keep_alive
