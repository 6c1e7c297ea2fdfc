"""The HTTP/1.1 the upload proxy speaks on its channels: request and response heads, bodies framed by
Content-Length or chunked, and answers (the message rules are `pycdi.http1`'s)."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field

from ..http1 import (
    MAX_HEAD,
    BadMessage,
    Framing,
    Headers,
    chunk_size,
    header,
    keep_alive,
    parse_headers,
    parse_request_line,
    parse_status_line,
    status_line,
    target_path,
)
from .stream import Channel, deadline_after


class IncompleteBody(ConnectionError):
    """The peer closed before the end of the body."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: Headers
    framing: Framing = field(default_factory=Framing)

    @property
    def path(self) -> str:
        """The decoded path, without the query (what aiohttp's `request.path` is)."""
        return target_path(self.target)

    def header(self, name: str) -> str | None:
        return header(self.headers, name)

    @property
    def keep_alive(self) -> bool:
        return keep_alive(self.version, self.header("Connection"))

    @property
    def expects_continue(self) -> bool:
        return self.version == "HTTP/1.1" and (self.header("Expect") or "").lower() == "100-continue"


@dataclass
class Response:
    status: int
    headers: Headers
    body: bytes = b""


class Reader:
    """A channel's input, keeping what was read past a head for the body that follows."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.buffer = bytearray()
        self._scratch = memoryview(bytearray(1 << 14))

    def read_into(self, view: memoryview) -> int | None:
        """As `Channel.read_into`, the kept bytes first."""
        if self.buffer:
            n = min(len(view), len(self.buffer))
            view[:n] = self.buffer[:n]
            del self.buffer[:n]
            return n
        return self.channel.read_into(view)

    def fill(self, deadline: float | None) -> bool:
        """Wait for more bytes into the buffer; False at the end of the stream."""
        n = self.channel.recv_into(self._scratch, deadline)
        self.buffer += self._scratch[:n]
        return n > 0

    def poll(self) -> bool:
        """Take in some of what arrived, without waiting; True when there is something to read or the stream
        ended (False after bytes that carry no data, such as TLS session tickets)."""
        n = self.channel.read_into(self._scratch)
        if n:
            self.buffer += self._scratch[:n]
        return bool(self.buffer) or n == 0

    def read_head(self, deadline: float | None) -> list[str] | None:
        """The lines of the next head (blank lines before it skipped); None if the stream ends before one."""
        start = 0
        while True:
            while self.buffer.startswith(b"\r\n"):
                del self.buffer[:2]
                start = 0
            end = self.buffer.find(b"\r\n\r\n", start)
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[:end + 4]
                return head.decode("latin-1").split("\r\n")
            if len(self.buffer) > MAX_HEAD:
                raise BadMessage("the request head is too large")
            start = max(0, len(self.buffer) - 3)
            if not self.fill(deadline):
                if self.buffer:
                    raise IncompleteBody("the connection closed in the middle of a head")
                return None

    def readline(self, deadline: float | None) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise BadMessage("line too long")
            if not self.fill(deadline):
                raise IncompleteBody("the connection closed in the middle of a chunked body")
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 2]
        return line

    def read_request(self, deadline: float | None) -> Request | None:
        lines = self.read_head(deadline)
        if lines is None:
            return None
        method, target, version = parse_request_line(lines[0])
        headers = parse_headers(lines[1:])
        return Request(method, target, version, headers, Framing.of(headers, version))


class Body:
    """A request's body as it arrives: `read_into` gives what is there (None: nothing yet, 0: the end).
    A client waiting for `100 Continue` gets it before the first read."""

    def __init__(self, reader: Reader, framing: Framing, *, send_continue: bool, timeout: float | None) -> None:
        self.reader = reader
        self.chunked = framing.chunked
        self.left = framing.length or 0  # of the body, or of the current chunk
        self.done = not framing.has_body
        self.started = False
        self.continue_pending = send_continue and not self.done
        self._timeout = timeout  # for the 100 Continue, and the short waits of chunk framing

    def read_into(self, view: memoryview) -> int | None:
        if self.done:
            return 0
        if self.continue_pending:
            self.reader.channel.sendall(b"HTTP/1.1 100 Continue\r\n\r\n", deadline_after(self._timeout))
            self.continue_pending = False
        self.started = True
        if self.left == 0:  # chunked: the next chunk's size
            self.left = self._next_chunk()
            if self.left == 0:
                self.done = True
                return 0
        n = self.reader.read_into(view[:self.left])
        if n == 0:
            raise IncompleteBody(f"the client closed with {self.left} bytes of the body still to come")
        if n is not None:
            self.left -= n
            if self.left == 0:
                if self.chunked:
                    if self.reader.readline(deadline_after(self._timeout)):
                        raise BadMessage("a chunk does not end where its size says")
                else:
                    self.done = True
        return n

    def _next_chunk(self) -> int:
        size = chunk_size(self.reader.readline(deadline_after(self._timeout)))
        if size == 0:
            while self.reader.readline(deadline_after(self._timeout)):
                pass  # trailer fields: not forwarded
        return size

    def drain(self, limit: int, deadline: float | None) -> bool:
        """Read and drop the rest of a small body (so the connection can serve another request); False when
        it is larger than `limit` or would need a `100 Continue` first."""
        if self.done:
            return True
        if self.continue_pending or self.chunked or self.left > limit:
            return False
        scratch = memoryview(bytearray(self.left))
        while not self.done:
            if self.read_into(scratch) is None:
                self.reader.channel.wait_readable(deadline)
        return True


def read_response(reader: Reader, *, head_only: bool, limit: int, deadline: float | None) -> Response:
    """The next final answer on `reader` (interim 1xx ones skipped), with at most `limit` bytes of its body."""
    while True:
        lines = reader.read_head(deadline)
        if lines is None:
            raise IncompleteBody("the server closed the connection without an answer")
        status, headers = parse_status_line(lines[0]), parse_headers(lines[1:])
        if not 100 <= status < 200 or status == 101:
            break
    if head_only or status in (204, 304) or status < 200:
        return Response(status, headers)
    framing = Framing.of(headers)
    body = bytearray()
    if framing.chunked:
        chunks = Body(reader, framing, send_continue=False, timeout=remaining(deadline))
        scratch = memoryview(bytearray(1 << 16))
        while len(body) < limit and (n := chunks.read_into(scratch)) != 0:
            if n is None:
                reader.channel.wait_readable(deadline)
            else:
                body += scratch[:n]
    else:
        wanted = limit if framing.length is None else min(limit, framing.length)
        while len(reader.buffer) < wanted and reader.fill(deadline):
            pass
        if framing.length is not None and len(reader.buffer) < wanted:
            raise IncompleteBody("the server closed the connection in the middle of its answer")
        body = reader.buffer[:wanted]
    return Response(status, headers, bytes(body[:limit]))


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def encode_response(response: Response, *, head_only: bool, close: bool) -> bytes:
    """The answer as sent: the given headers, then its length, the date and whether the connection ends."""
    lines = [status_line(response.status)]
    lines += [f"{k}: {v}\r\n" for k, v in response.headers]
    names = {k.lower() for k, _ in response.headers}
    no_body = response.status in (204, 304) or response.status < 200
    if not no_body:
        lines.append(f"Content-Length: {len(response.body)}\r\n")
    if "date" not in names:
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}\r\n")
    if close:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    data = "".join(lines).encode("latin-1")
    return data if head_only or no_body else data + response.body
