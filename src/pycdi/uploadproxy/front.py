"""The proxy's listening side: a thread accepts, and each connection gets its own thread for its TLS handshake
and its HTTP/1.1 requests, so upload bodies move through blocking calls that release the GIL instead of through
`pycdi up`'s event loop."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

from ..http1 import BadMessage
from .http import Body, Reader, Request, Response, encode_response
from .stream import Channel, deadline_after

log = logging.getLogger(__name__)

#: aiohttp's defaults, which the proxy had: the TLS handshake, and a connection idle between requests.
HANDSHAKE_TIMEOUT: Final = 60.0
IDLE_TIMEOUT: Final = 75.0
#: Writing an answer, or a 100 Continue, to a client that does not read.
WRITE_TIMEOUT: Final = 60.0
#: A request body not read (the request was refused) is read and dropped up to this size to keep the connection;
#: a larger one closes it, after reading and dropping for at most LINGER seconds (aiohttp's lingering close).
DRAIN_LIMIT: Final = 64 * 1024
LINGER: Final = 10.0
#: What `close` waits for connection threads to end after their sockets are shut.
STOP_TIMEOUT: Final = 5.0

#: Answers a request: reads (or not) its body, returns the answer to send.
Respond = Callable[[Request, Body], Response]


class Connections:
    """The channels in use, so that stopping can wake every thread waiting on one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: set[Channel] = set()
        self.closing = False

    @contextlib.contextmanager
    def track(self, channel: Channel) -> Iterator[Channel]:
        with self._lock:
            if self.closing:
                channel.abort()
            self._channels.add(channel)
        try:
            yield channel
        finally:
            with self._lock:
                self._channels.discard(channel)

    def abort_all(self) -> None:
        with self._lock:
            self.closing = True
            channels = list(self._channels)
        for channel in channels:
            channel.abort()


class Front:
    def __init__(self, respond: Respond, ssl_context: ssl.SSLContext | None, connections: Connections) -> None:
        self.respond = respond
        self.ssl_context = ssl_context
        self.connections = connections
        self._listener: socket.socket | None = None
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def start(self, host: str, port: int) -> int:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses its port at once
            listener.bind(address)
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._spawn(self._accept, listener, name="upload-proxy-accept")
        return int(listener.getsockname()[1])

    def _spawn(self, target: Callable[[socket.socket], None], sock: socket.socket, name: str) -> None:
        def run() -> None:
            try:
                target(sock)
            finally:
                with self._lock:
                    self._threads.discard(thread)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self.connections.closing:
            try:
                sock, _ = listener.accept()
            except OSError as err:
                if self.connections.closing:
                    return
                log.warning("upload proxy: accept failed: %s", err)
                self._closed.wait(0.1)  # out of descriptors: give the connections in progress a moment to end
                continue
            self._spawn(self._serve, sock, name="upload-proxy-connection")

    def close(self) -> None:
        """Stop accepting, wake every connection thread (their sockets are shut) and wait a little for them."""
        self._closed.set()
        self.connections.abort_all()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept
            self._listener.close()
        deadline = time.monotonic() + STOP_TIMEOUT
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # ---- one connection -------------------------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # short answers go out at once
            channel = Channel.plain(sock) if self.ssl_context is None else Channel.tls_server(sock, self.ssl_context)
        except (OSError, ValueError) as err:
            log.debug("upload proxy: connection dropped: %s", err)
            sock.close()
            return
        with self.connections.track(channel):
            try:
                channel.handshake(deadline_after(HANDSHAKE_TIMEOUT))
            except (OSError, ValueError) as err:
                log.debug("upload proxy: TLS handshake failed: %s", err)
                channel.close(notify=False)
                return
            self._requests(channel)

    def _requests(self, channel: Channel) -> None:
        reader = Reader(channel)
        linger = False
        try:
            while not self.connections.closing:
                try:
                    request = reader.read_request(deadline_after(IDLE_TIMEOUT))
                except BadMessage as err:
                    self._send(channel, Response(400, [("Content-Type", "text/plain; charset=utf-8")],
                                                 f"Bad Request: {err}".encode()), head_only=False, close=True)
                    linger = True
                    return
                if request is None:
                    return
                body = Body(reader, request.framing, send_continue=request.expects_continue,
                            timeout=WRITE_TIMEOUT)
                response = self.respond(request, body)
                keep = request.keep_alive and not self.connections.closing and (
                    body.done or body.drain(DRAIN_LIMIT, deadline_after(WRITE_TIMEOUT)))
                self._send(channel, response, head_only=request.method == "HEAD", close=not keep)
                if not keep:
                    linger = not body.done
                    return
        except (OSError, ssl.SSLError, BadMessage) as err:
            # The client went away, timed out between requests, or broke its body's framing: no answer.
            log.debug("upload proxy: connection ended: %s", err)
        finally:
            if linger:
                channel.linger(LINGER)
            else:
                channel.close()

    @staticmethod
    def _send(channel: Channel, response: Response, *, head_only: bool, close: bool) -> None:
        channel.sendall(encode_response(response, head_only=head_only, close=close), deadline_after(WRITE_TIMEOUT))

