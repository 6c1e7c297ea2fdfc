"""Forwarding one upload in its connection's thread: connect to the upload server over mTLS (again, for a while,
while it is still starting), send the request head, move the body from the client's channel to the server's in
large batches, and read the server's answer, which may come before the body is all sent (a refusal)."""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Final

from .. import unixsock
from ..http1 import BadMessage
from .front import Connections
from .http import Body, Reader, Request, Response, read_response
from .stream import READABLE, Channel, deadline_after, remaining_ms

log = logging.getLogger(__name__)

#: A request may stream for a day (upstream's `proxyRequestTimeout`).
PROXY_TIMEOUT: Final = 24 * 3600.0
CONNECT_TIMEOUT: Final = 10.0
#: Between connection attempts to a server that is still starting (its pod already reports ready).
CONNECT_RETRY: Final = 0.2
#: Body bytes taken from the client before they are encrypted and sent on at once.
RELAY_BUFFER: Final = 256 * 1024
#: While the body streams without pause, the server is looked at for an early answer after this many bytes.
ANSWER_CHECK: Final = 4 << 20
#: The server's answers are short texts: read whole up to this size, then relayed.
MAX_ANSWER: Final = 1 << 20
#: Hop-by-hop headers (RFC 9110 7.6.1) are not forwarded, nor is the token, which the server has no use for; the
#: proxy answers `Expect: 100-continue` itself, once it has the server on the line.
NOT_FORWARDED: Final = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                                  "trailer", "transfer-encoding", "upgrade", "host", "authorization", "expect"})


class ProxyError(Exception):
    """The upload server could not be reached or did not answer properly (502)."""


class CertificateError(ProxyError):
    """The upload server's certificate did not verify: the CA may have been made again."""


class ClientGone(ConnectionError):
    """The client closed, or broke its body's framing: there is nobody to answer."""


@dataclass(frozen=True)
class Target:
    """Where the upload goes: the pod's address, the server's path, the name its certificate carries; in an
    embedded cluster, the server's local socket (plain HTTP: only `pycdi up`'s user can open it)."""

    address: str
    port: int
    path: str
    hostname: str
    context: ssl.SSLContext
    local_socket: str | None = None

    @property
    def authority(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def connect(target: Target, retry_for: float, stopped: threading.Event) -> Channel:
    """A TLS channel to the upload server (a plain one to its local socket); refused or failed attempts are tried
    again for `retry_for` seconds (nothing was sent yet), a certificate that does not verify is not."""
    deadline = time.monotonic() + retry_for
    while True:
        if target.local_socket is not None:
            try:
                return _connect_local(target.local_socket)
            except OSError as err:
                failure: BaseException = err
        else:
            try:
                sock = socket.create_connection((target.address, target.port), timeout=CONNECT_TIMEOUT)
            except OSError as err:
                failure = err
            else:
                try:
                    return Channel.tls_client(sock, target.context, target.hostname, CONNECT_TIMEOUT)
                except ssl.SSLCertVerificationError as err:
                    sock.close()
                    raise CertificateError(f"cannot connect to {target.authority}: {err}") from err
                except (OSError, ValueError) as err:
                    sock.close()
                    failure = err
        if time.monotonic() >= deadline or stopped.wait(CONNECT_RETRY):
            where = target.local_socket or target.authority
            raise ProxyError(f"cannot connect to {where}: {failure}")


def _connect_local(path: str) -> Channel:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        with unixsock.address(path) as name:
            sock.connect(name)
    except OSError:
        sock.close()
        raise
    return Channel.plain(sock)


def request_head(request: Request, target: Target) -> bytes:
    lines = [f"{request.method} {target.path} HTTP/1.1", f"Host: {target.authority}"]
    lines += [f"{k}: {v}" for k, v in request.headers if k.lower() not in NOT_FORWARDED]
    if request.framing.chunked:
        lines.append("Transfer-Encoding: chunked")
    lines.append("Connection: close")  # one upload per connection
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def forward(request: Request, body: Body, target: Target, *, retry_for: float, stopped: threading.Event,
            connections: Connections) -> Response:
    """The upload server's answer to the request (its body streamed through): status, body, headers but the
    hop-by-hop ones. ProxyError when there is none; ClientGone when the client left."""
    backend = connect(target, retry_for, stopped)
    deadline = deadline_after(PROXY_TIMEOUT)
    answer = Reader(backend)
    with connections.track(backend):
        try:
            backend.sendall(request_head(request, target), deadline)
            if not body.done:
                _pump(body, backend, answer, deadline)
            response = read_response(answer, head_only=request.method == "HEAD", limit=MAX_ANSWER, deadline=deadline)
        except (OSError, BadMessage) as err:
            if isinstance(err, ClientGone):
                raise
            raise ProxyError(str(err) or type(err).__name__) from err
        finally:
            # The client's end, or a body left unsent, ends the upload; the server sees the connection close.
            backend.close(notify=body.done)
    relayed = [(k, v) for k, v in response.headers if k.lower() not in NOT_FORWARDED and k.lower() != "content-length"]
    return Response(response.status, relayed, response.body)


def _pump(body: Body, backend: Channel, answer: Reader, deadline: float | None) -> None:
    """Move the body from the client to the server until its end, or until the server answers (or closes)."""
    client, server = body.reader.channel, backend.fileno()
    buffer = memoryview(bytearray(RELAY_BUFFER))
    either = select.poll()  # waiting for the client, or an early answer
    either.register(client.fileno(), READABLE)
    either.register(server, READABLE)
    writable = select.poll()  # waiting for the server to take more, or an early answer
    writable.register(server, select.POLLOUT | READABLE)
    answered = select.poll()  # a server that answers while still reading, with the client sending at full speed
    answered.register(server, READABLE)
    unchecked = 0
    while True:
        # Take all the client has sent, up to a buffer's worth: one large write to the server for many records.
        filled, n = 0, None
        try:
            while filled < RELAY_BUFFER and (n := body.read_into(buffer[filled:])):
                filled += n
        except (OSError, BadMessage) as err:
            raise ClientGone(str(err) or type(err).__name__) from err
        if filled:
            if body.chunked:
                backend.write(b"%x\r\n" % filled)
                backend.write(buffer[:filled])
                backend.write(b"\r\n")
            else:
                backend.write(buffer[:filled])
        if n == 0 and body.chunked:
            backend.write(b"0\r\n\r\n")
        try:
            while not backend.flush_nowait():
                for _, events in _poll(writable, deadline):
                    if events & READABLE and answer.poll():
                        return
        except OSError:
            return  # the server stopped reading: its answer, if it gave one, is there to read
        if n == 0:
            return
        if n is None:
            for fd, _ in _poll(either, deadline):
                if fd == server and answer.poll():
                    return
        unchecked += filled
        if unchecked >= ANSWER_CHECK:
            unchecked = 0
            if answered.poll(0) and answer.poll():
                return


def _poll(poller: select.poll, deadline: float | None) -> list[tuple[int, int]]:
    events = poller.poll(remaining_ms(deadline))
    if not events:
        raise TimeoutError("the upload did not finish in time")
    return events
