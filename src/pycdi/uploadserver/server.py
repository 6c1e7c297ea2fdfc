"""Run the upload server until the upload is done (or its background processing failed, or SIGTERM): blocking
sockets (the TLS port, and in an embedded cluster a local Unix socket), a thread per connection (TLS handshake
included), the accept loop on the calling thread."""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import struct
import threading
import weakref
from types import FrameType

from .. import unixsock
from ..datapath import importer
from . import http
from .app import UploadServer
from .config import ServerConfig

log = logging.getLogger(__name__)
#: How long a finished server waits for the requests in progress (the last answer) before cutting them.
SHUTDOWN_TIMEOUT = 10.0
#: An idle connection (between requests, or before its TLS handshake ends) is closed after this (as aiohttp).
KEEPALIVE_TIMEOUT = 75.0
#: A request whose client sends nothing for this long is cut (the importer's stall limit): a stalled client must
#: not hold the server's only upload until TCP gives up (hours); the upload is discarded and can be retried.
BODY_IDLE_TIMEOUT = 600.0


class Interrupted(Exception):
    """SIGTERM or SIGINT before the upload finished."""


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.busy = False  # inside a request: shutdown waits for it to end

    def cut(self) -> None:
        """Wake the connection's thread out of a blocking read or write (from another thread)."""
        try:
            # socket.socket's own shutdown: SSLSocket.shutdown would drop its TLS state under the reading thread.
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


def _local_listener(path: str) -> socket.socket:
    """A Unix socket at `path` (one left by an earlier run of the pod replaced), for this user only."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unixsock.address(path) as name:
            sock.bind(name)
        os.chmod(path, 0o600)
        sock.listen(16)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _same_user(sock: socket.socket) -> bool:
    """The peer of a local connection runs as this process's user (the socket's directory already sees to it:
    this is the second lock)."""
    pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    if uid != os.geteuid():
        log.warning("refused a local connection from pid %d (uid %d)", pid, uid)
        return False
    return True


class Listener:
    """Accepts connections for an UploadServer and serves each on its own thread until told to stop."""

    def __init__(self, app: UploadServer, address: str, port: int,
                 body_idle_timeout: float = BODY_IDLE_TIMEOUT, local_socket: str | None = None) -> None:
        self.app = app
        self.body_idle_timeout = body_idle_timeout
        self._ssl = app.ssl_context()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self._sock = socket.create_server((address, port), family=family, backlog=128)
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self.local_socket = local_socket
        self._local: socket.socket | None = None
        if local_socket:
            try:
                self._local = _local_listener(local_socket)
            except OSError as err:  # the proxy then comes over TCP, as on any cluster
                log.warning("not listening on %s: %s", local_socket, err)
                self.local_socket = None
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # Closed with the listener, not at shutdown: a late `wake` must never write into a reused descriptor.
        weakref.finalize(self, _close, self._wake_r, self._wake_w)
        self._lock = threading.Condition()
        self._connections: set[_Connection] = set()
        self._closing = False
        self.interrupted = False
        app.on_finish = self.wake

    def wake(self) -> None:
        """Make `run` look at its state again (safe from signal handlers and other threads)."""
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending

    def interrupt(self) -> None:
        self.interrupted = True
        self.wake()

    def run(self, *, until_finished: bool = True) -> None:
        """Accept until the upload finished (unless not `until_finished`) or `interrupt`, then shut down (the
        last answers still go out)."""
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._sock, selectors.EVENT_READ)
                if self._local is not None:
                    selector.register(self._local, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self.interrupted and not (until_finished and self.app.finished.is_set()):
                    for key, _ in selector.select():
                        if key.fileobj is self._sock:
                            self._accept(self._sock)
                        elif self._local is not None and key.fileobj is self._local:
                            self._accept(self._local)
                        else:
                            while True:
                                try:
                                    if not os.read(self._wake_r, 64):
                                        break
                                except BlockingIOError:
                                    break
        finally:
            self.shutdown()

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:  # out of descriptors and the like: the client may try again
            log.warning("accept failed: %s", err)
            return
        local = listener is self._local
        if local:
            if not _same_user(sock):
                sock.close()
                return
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._serve, args=(sock, local), name="connection", daemon=True).start()

    def _serve(self, raw: socket.socket, local: bool = False) -> None:
        raw.settimeout(KEEPALIVE_TIMEOUT)
        conn = _Connection(raw)
        with self._lock:
            if self._closing:
                raw.close()
                return
            self._connections.add(conn)
        try:
            sock = raw
            if self._ssl is not None and not local:
                sock = self._ssl.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
                with self._lock:
                    conn.sock = sock  # what `cut` shuts down from now on (`raw` gave its descriptor away)
                    if self._closing:
                        return
                sock.do_handshake()
            self._requests(conn, http.Wire(sock, local=local))
        except (OSError, ValueError) as err:  # handshake refused, client gone, idle too long
            log.debug("connection ended: %r", err)
        finally:
            with self._lock:
                self._connections.discard(conn)
                conn.busy = False
                self._lock.notify_all()
            conn.sock.close()

    def _requests(self, conn: _Connection, wire: http.Wire) -> None:
        while True:
            try:
                request = http.read_request(wire)
            except http.BadRequest as err:
                log.warning("bad request: %s", err)
                wire.send(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                          b"Content-Length: 11\r\nConnection: close\r\n\r\nBad Request")
                return
            if request is None:
                return
            with self._lock:
                if self._closing:
                    return
                conn.busy = True
            # Body reads wait for the client up to the idle limit; a stopping server cuts them sooner (`cut`).
            wire.sock.settimeout(self.body_idle_timeout)
            exchange = http.Exchange(wire, request)
            try:
                self.app.handle(exchange)
            except (OSError, ValueError):
                raise
            except Exception:
                log.exception("error handling %s %s", request.method, request.path)
                if not exchange.answered:
                    exchange.respond(500, "500 Internal Server Error")
                return
            if not exchange.answered or not exchange.finish():
                return
            wire.sock.settimeout(KEEPALIVE_TIMEOUT)
            with self._lock:
                conn.busy = False
                self._lock.notify_all()
                if self._closing:
                    return

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop accepting; idle connections close at once, busy ones after their request (or `timeout`)."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._sock.close()
            if self._local is not None:
                self._local.close()
                with contextlib.suppress(OSError):
                    os.unlink(self.local_socket or "")
            for conn in self._connections:
                if not conn.busy:
                    conn.cut()
            self._lock.wait_for(lambda: not any(c.busy for c in self._connections), timeout)
            for conn in self._connections:
                conn.cut()
            # The cut requests end (their uploads fail and are cleaned up) before the process goes.
            self._lock.wait_for(lambda: not self._connections, timeout)


def serve(config: ServerConfig) -> importer.ImportResult:
    """Serve until done; returns the import's result, or raises the async processing error or Interrupted.
    Call from the main thread: SIGTERM and SIGINT stop the server."""
    server = UploadServer(config)
    listener = Listener(server, config.bind_address, config.bind_port, local_socket=config.local_socket)

    def stop(signum: int, frame: FrameType | None) -> None:
        listener.interrupt()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("Running server on %s:%d%s", config.bind_address, listener.port,
                 f" and {listener.local_socket}" if listener.local_socket else "")
        listener.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if server.failure is not None:
        raise server.failure
    if server.result is None:
        raise Interrupted("the upload server was stopped before an upload completed")
    log.info("Shutting down http server after successful upload")
    return server.result
