"""A scratch file served read-only over NBD while it downloads, so qemu-img converts as the bytes arrive.

One sequential GET (no per-read round trips, unlike nbdkit's curl plugin) and the convert overlapping the
download (unlike download-then-convert). A read waits until the download has passed its last byte, except
small reads far ahead of it: qemu-img reads every L2 table before the first data cluster, and those sit all
through the file; they are fetched by a ranged GET of their own (one round trip each), when the server allows.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import struct
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from .formats import Readable, readinto
from .sources.http import HttpConfig
from .tls import ssl_context

# The NBD protocol's fixed-newstyle handshake and simple replies (github.com/NetworkBlockDevice/nbd, proto.md).
_NBDMAGIC = 0x4E42444D41474943
_IHAVEOPT = 0x49484156454F5054
_REPLY_MAGIC_OPT = 0x3E889045565A9
_REQUEST_MAGIC = 0x25609513
_REPLY_MAGIC = 0x67446698
_FLAG_FIXED_NEWSTYLE, _FLAG_NO_ZEROES = 1, 2
_C_NO_ZEROES = 2
_OPT_EXPORT_NAME, _OPT_ABORT, _OPT_LIST, _OPT_INFO, _OPT_GO = 1, 2, 3, 6, 7
_REP_ACK, _REP_SERVER, _REP_INFO, _REP_ERR_UNSUP = 1, 2, 3, (1 << 31) + 1
_INFO_EXPORT = 0
_TX_HAS_FLAGS, _TX_READ_ONLY, _TX_CAN_MULTI_CONN = 1, 2, 1 << 8
_TX_FLAGS = _TX_HAS_FLAGS | _TX_READ_ONLY | _TX_CAN_MULTI_CONN
_CMD_READ, _CMD_WRITE, _CMD_DISC = 0, 1, 2
_EPERM, _EIO, _EINVAL = 1, 5, 22
_MAX_OPTION = 64 * 1024
_MAX_WRITE = 32 << 20
_ZEROS = bytes(1 << 20)
#: A read this small and this far past the download is metadata (L2 tables, refcounts: one cluster each):
#: fetched at once by range rather than waited for. Data reads (2 MiB) and reads near the download wait.
FETCH_MAX = 1 << 20
FETCH_AHEAD = 16 << 20

Fetch = Callable[[int, int], "bytes | None"]


class _Closed(Exception):
    """The peer went away."""


class Cancelled(Exception):
    """The import stopped using the download (it failed elsewhere)."""


class Spool:
    """How much of the file is in; readers wait for their bytes, the download moves the mark."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._cond = threading.Condition()
        self._mark = 0
        self._done = False
        self.error: BaseException | None = None
        self.cancelled = False

    def advance(self, offset: int) -> None:
        with self._cond:
            if offset > self._mark:
                self._mark = offset
                self._cond.notify_all()

    def end(self, error: BaseException | None) -> None:
        with self._cond:
            self._done = True
            self.error = error
            self._cond.notify_all()

    def cancel(self) -> None:
        with self._cond:
            self.cancelled = True
            self._done = True
            self._cond.notify_all()

    def wait_for(self, end: int) -> bool:
        """True once [0, end) is in the file; False when the download ended (or was stopped) short of it."""
        with self._cond:
            while self._mark < end and not self._done:
                self._cond.wait()
            return self._mark >= end and not self.cancelled

    def far_ahead(self, offset: int) -> bool:
        with self._cond:
            return offset >= self._mark + FETCH_AHEAD

    def wait_done(self) -> None:
        with self._cond:
            while not self._done:
                self._cond.wait()


class RangeFetcher:
    """Ranged GETs of the image's URL on one kept-alive connection; None (and no further tries) on anything
    but a 206 of the asked length, so a server without ranges only costs one request.

    What it fetched is kept (up to CACHE_BYTES): qemu-img info, check and convert each read the same L2 tables,
    and every repeat would be another round trip."""

    CACHE_BYTES = 16 << 20

    def __init__(self, config: HttpConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._broken = False
        self._cache: dict[tuple[int, int], bytes] = {}
        self._cached = 0

    def _keep(self, key: tuple[int, int], data: bytes) -> None:
        while self._cache and self._cached + len(data) > self.CACHE_BYTES:
            oldest = next(iter(self._cache))
            self._cached -= len(self._cache.pop(oldest))
        if len(data) <= self.CACHE_BYTES:
            self._cache[key] = data
            self._cached += len(data)

    def _connect(self) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(self._config.url)
        if parts.scheme == "https":
            ctx = ssl_context(self._config.cert_dirs, self._config.insecure)
            return http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=60, context=ctx)
        return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)

    def __call__(self, offset: int, length: int) -> bytes | None:
        if any(os.environ.get(v) for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")):
            return None  # the connection below would bypass the proxy
        with self._lock:
            if self._broken:
                return None
            hit = self._cache.get((offset, length))
            if hit is not None:
                return hit
            parts = urllib.parse.urlsplit(self._config.url)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            headers = dict(self._config.header_pairs())
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
            try:
                if self._conn is None:
                    self._conn = self._connect()
                self._conn.request("GET", path, headers=headers)
                resp = self._conn.getresponse()
                # Anything but the asked range (a 200 is the whole image) is left unread: the connection goes.
                if resp.status == 206 and resp.length == length:
                    data = resp.read()
                    if len(data) == length:
                        self._keep((offset, length), data)
                        return data
            except (OSError, http.client.HTTPException):
                pass
            self._broken = True
            if self._conn is not None:
                self._conn.close()
            return None

    def close(self) -> None:
        with self._lock:
            self._broken = True
            self._cache.clear()
            if self._conn is not None:
                self._conn.close()


class _Stoppable:
    """The download's reader, which stops at the next read once the import gave up on it."""

    def __init__(self, inner: Readable, spool: Spool) -> None:
        self._inner = inner
        self._spool = spool

    def read(self, size: int = -1, /) -> bytes:
        if self._spool.cancelled:
            raise Cancelled()
        return self._inner.read(size)

    def readinto(self, view: memoryview, /) -> int:
        if self._spool.cancelled:
            raise Cancelled()
        return readinto(self._inner, view)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = conn.recv_into(view[got:])
        if not k:
            raise _Closed()
        got += k
    return bytes(buf)


class _Server:
    """Accepts NBD clients on a unix socket; one thread per connection, requests answered in order."""

    def __init__(self, path: str, spool: Spool, fetch: Fetch | None) -> None:
        self._spool = spool
        self._fetch = fetch
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._dir = tempfile.mkdtemp(prefix="pycdi-spool-")
        self.socket_path = os.path.join(self._dir, "nbd.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(8)
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="nbd-spool-accept", daemon=True)
        self._acceptor.start()

    @property
    def uri(self) -> str:
        return f"nbd+unix:///?socket={self.socket_path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._conns.append(conn)
                thread = threading.Thread(target=self._serve, args=(conn,), name="nbd-spool-conn", daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._handshake(conn):
                self._transmit(conn)
        except (_Closed, OSError, struct.error):
            pass
        finally:
            conn.close()

    def _option_reply(self, conn: socket.socket, option: int, kind: int, data: bytes = b"") -> None:
        conn.sendall(struct.pack(">QIII", _REPLY_MAGIC_OPT, option, kind, len(data)) + data)

    def _handshake(self, conn: socket.socket) -> bool:
        size = self._spool.size
        conn.sendall(struct.pack(">QQH", _NBDMAGIC, _IHAVEOPT, _FLAG_FIXED_NEWSTYLE | _FLAG_NO_ZEROES))
        (client_flags,) = struct.unpack(">I", _recv_exact(conn, 4))
        while True:
            magic, option, length = struct.unpack(">QII", _recv_exact(conn, 16))
            if magic != _IHAVEOPT or length > _MAX_OPTION:
                return False
            _recv_exact(conn, length)  # an export name or info requests: there is one export, all of it
            if option == _OPT_EXPORT_NAME:
                pad = b"" if client_flags & _C_NO_ZEROES else bytes(124)
                conn.sendall(struct.pack(">QH", size, _TX_FLAGS) + pad)
                return True
            if option in (_OPT_GO, _OPT_INFO):
                self._option_reply(conn, option, _REP_INFO, struct.pack(">HQH", _INFO_EXPORT, size, _TX_FLAGS))
                self._option_reply(conn, option, _REP_ACK)
                if option == _OPT_GO:
                    return True
            elif option == _OPT_LIST:
                self._option_reply(conn, option, _REP_SERVER, struct.pack(">I", 0))
                self._option_reply(conn, option, _REP_ACK)
            elif option == _OPT_ABORT:
                self._option_reply(conn, option, _REP_ACK)
                return False
            else:  # structured replies, meta contexts, TLS...: simple replies are all this server speaks
                self._option_reply(conn, option, _REP_ERR_UNSUP)

    def _transmit(self, conn: socket.socket) -> None:
        size = self._spool.size
        while True:
            magic, _flags, kind, cookie, offset, length = struct.unpack(">IHHQQI", _recv_exact(conn, 28))
            if magic != _REQUEST_MAGIC or kind == _CMD_DISC:
                return
            if kind == _CMD_READ:
                early = self._early(offset, length) if offset + length <= size else None
                if offset + length > size:
                    conn.sendall(struct.pack(">IIQ", _REPLY_MAGIC, _EINVAL, cookie))
                elif early is not None:
                    conn.sendall(struct.pack(">IIQ", _REPLY_MAGIC, 0, cookie) + early)
                elif not self._spool.wait_for(offset + length):
                    conn.sendall(struct.pack(">IIQ", _REPLY_MAGIC, _EIO, cookie))
                else:
                    conn.sendall(struct.pack(">IIQ", _REPLY_MAGIC, 0, cookie))
                    self._send_range(conn, offset, length)
            elif kind == _CMD_WRITE:
                if length > _MAX_WRITE:
                    return
                _recv_exact(conn, length)
                conn.sendall(struct.pack(">IIQ", _REPLY_MAGIC, _EPERM, cookie))
            else:
                conn.sendall(struct.pack(">IIQ", _REPLY_MAGIC, _EINVAL, cookie))

    def _early(self, offset: int, length: int) -> bytes | None:
        """The bytes by a ranged GET when the read is metadata far past the download (see FETCH_MAX)."""
        if self._fetch is None or length > FETCH_MAX or not self._spool.far_ahead(offset):
            return None
        return self._fetch(offset, length)

    def _send_range(self, conn: socket.socket, offset: int, length: int) -> None:
        end = offset + length
        while offset < end:
            sent = os.sendfile(conn.fileno(), self._fd, offset, end - offset)
            if sent == 0:
                # Past the file's current end but inside what has arrived: zero blocks the sparse writer
                # skipped, before the closing truncate gives the file its length.
                n = min(end - offset, len(_ZEROS))
                conn.sendall(_ZEROS[:n])
                sent = n
            offset += sent

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, threads = list(self._conns), list(self._threads)
        # A connection of our own wakes the accepting thread, which then sees the server closed.
        with suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
            wake.connect(self.socket_path)
        self._acceptor.join()
        self._listener.close()
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join()
        os.close(self._fd)
        shutil.rmtree(self._dir, ignore_errors=True)


class Served:
    """What `serve` yields: the URI for qemu-img and the download's outcome."""

    def __init__(self, uri: str, spool: Spool, thread: threading.Thread) -> None:
        self.uri = uri
        self._spool = spool
        self._thread = thread

    @property
    def error(self) -> BaseException | None:
        return self._spool.error

    def wait(self) -> None:
        """Wait for the download to end; raise its error."""
        self._spool.wait_done()
        self._thread.join()
        if self._spool.error is not None:
            raise self._spool.error


@contextmanager
def serve(
    path: str,
    size: int,
    fill: Callable[[Readable, Callable[[int], None]], None],
    reader: Readable,
    fetch: Fetch | None = None,
) -> Iterator[Served]:
    """Run `fill(reader, advance)` in a thread (the download into `path`, calling `advance(offset)` as bytes
    land) and serve `path`, `size` bytes, over NBD meanwhile; `fetch(offset, length)` gets metadata ahead of
    the download. Leaving the block stops the download if it is still going (its reader raises Cancelled at
    its next read) and the server."""
    # The download truncates and rewrites this same inode; the server's descriptor is opened before it starts.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    spool = Spool(size)
    server = _Server(path, spool, fetch)

    def download() -> None:
        try:
            fill(_Stoppable(reader, spool), spool.advance)
        except BaseException as err:
            spool.end(err)
        else:
            spool.end(None)

    thread = threading.Thread(target=download, name="nbd-spool-download", daemon=True)
    thread.start()
    try:
        yield Served(server.uri, spool, thread)
    finally:
        spool.cancel()
        server.close()
