"""Byte channels for the proxy's relay threads: a non-blocking socket, plain or TLS through memory BIOs, whose
waits are polls with a deadline (so a relay can watch both of its sockets at once)."""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Callable
from typing import Final, cast

#: One socket read takes up to this much: many TLS records per system call, which is what makes the relay cheap
#: (an `SSLSocket` reads every record with two calls and writes every record with one).
RAW_READ: Final = 1 << 20
READABLE: Final = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
WRITABLE: Final = select.POLLOUT | select.POLLHUP | select.POLLERR


def remaining_ms(deadline: float | None) -> int | None:
    """A poll timeout in milliseconds until `deadline` (monotonic seconds); None waits without end."""
    if deadline is None:
        return None
    return max(0, int((deadline - time.monotonic()) * 1000 + 0.999))


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


class Channel:
    """A connected socket. Reads decrypt whatever already arrived; writes queue (encrypted) and flush."""

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject | None = None,
                 incoming: ssl.MemoryBIO | None = None, outgoing: ssl.MemoryBIO | None = None,
                 raw_read: int = RAW_READ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.tls, self.incoming, self.outgoing = tls, incoming, outgoing
        self.eof = False  # the peer closed its side (TLS: the socket's end reached the BIO)
        self._ended = False  # TLS: a read reported the end of the stream
        self._raw = memoryview(bytearray(raw_read))
        self._unsent = memoryview(b"")
        self._plain_queue = bytearray()
        self._readable = select.poll()
        self._readable.register(sock, READABLE)
        self._writable = select.poll()
        self._writable.register(sock, WRITABLE)

    @classmethod
    def plain(cls, sock: socket.socket) -> Channel:
        return cls(sock, raw_read=1 << 16)  # the buffer serves `linger` only

    @classmethod
    def tls_server(cls, sock: socket.socket, context: ssl.SSLContext) -> Channel:
        """A client's connection; `handshake` comes next."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        return cls(sock, context.wrap_bio(incoming, outgoing, server_side=True), incoming, outgoing)

    @classmethod
    def tls_client(cls, sock: socket.socket, context: ssl.SSLContext, hostname: str, timeout: float) -> Channel:
        """The upload server's side: it only ever sends short answers, hence the small read buffer."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        channel = cls(sock, context.wrap_bio(incoming, outgoing, server_hostname=hostname), incoming, outgoing,
                      raw_read=1 << 16)
        channel.handshake(deadline_after(timeout))
        return channel

    def fileno(self) -> int:
        return self.sock.fileno()

    def handshake(self, deadline: float | None) -> None:
        if self.tls is None:
            return
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush(deadline)
                if not self._receive() and not self.eof:
                    self.wait(self._readable, deadline)
                elif self.eof:
                    raise ConnectionResetError("the peer closed the connection during the TLS handshake") from None
        self.flush(deadline)

    # ---- reading ---------------------------------------------------------------------------------------

    def _receive(self) -> bool:
        """One socket read into the TLS input; False when nothing was there (EOF sets `eof`)."""
        assert self.incoming is not None
        try:
            n = self.sock.recv_into(self._raw)
        except (BlockingIOError, InterruptedError):
            return False
        if n == 0:
            self.eof = True
            self.incoming.write_eof()
            return False
        self.incoming.write(self._raw[:n])
        return True

    def read_into(self, view: memoryview) -> int | None:
        """What is there now, up to the view's size, without waiting: bytes read, 0 at the end of the stream,
        None for nothing yet. TLS: every record already received is decrypted, taking in more from the socket
        while it has some, so that a relay moves large batches."""
        if self.tls is None:
            try:
                n = self.sock.recv_into(view)
            except (BlockingIOError, InterruptedError):
                return None
            if n == 0:
                self.eof = True
            return n
        if self._ended:
            return 0
        # Given a buffer, `read` returns a count (0: close_notify), whatever typeshed says.
        read = cast("Callable[[int, memoryview], int]", self.tls.read)
        size, got = len(view), 0
        while got < size:
            try:
                n = read(size - got, view[got:] if got else view)
            except ssl.SSLWantReadError:
                if self._receive() or self.eof:
                    continue  # more records; or the socket's end, which the next read reports
                break
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                n = 0  # the socket ended without close_notify: the HTTP layer tells if anything is missing
            if n == 0:
                self._ended = True
                return got
            got += n
        return got or None

    def recv_into(self, view: memoryview, deadline: float | None) -> int:
        """Wait for some bytes (0 at the end of the stream); TimeoutError past the deadline."""
        while (n := self.read_into(view)) is None:
            self.wait(self._readable, deadline)
        return n

    def wait(self, poller: select.poll, deadline: float | None) -> None:
        if not poller.poll(remaining_ms(deadline)):
            raise TimeoutError("timed out")

    def wait_readable(self, deadline: float | None) -> None:
        self.wait(self._readable, deadline)

    # ---- writing ---------------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes (TLS: encrypted now, into the output BIO); `flush` sends them. Plain: with nothing queued
        the bytes are sent from the caller's buffer, which must stay as it is until the flush is done."""
        if self.tls is not None:
            self.tls.write(data)
        elif not self._unsent and not self._plain_queue:
            self._unsent = memoryview(data).cast("B")
        else:
            self._plain_queue += data

    def flush_nowait(self) -> bool:
        """Send what the socket takes now; True once nothing is left queued."""
        while True:
            if not self._unsent:
                if self.outgoing is not None and self.outgoing.pending:
                    self._unsent = memoryview(self.outgoing.read())
                elif self._plain_queue:
                    self._unsent = memoryview(bytes(self._plain_queue))
                    self._plain_queue.clear()
                else:
                    return True
            try:
                sent = self.sock.send(self._unsent)
            except (BlockingIOError, InterruptedError):
                return False
            self._unsent = self._unsent[sent:]

    def flush(self, deadline: float | None) -> None:
        while not self.flush_nowait():
            self.wait(self._writable, deadline)

    def sendall(self, data: bytes | bytearray | memoryview, deadline: float | None) -> None:
        self.write(data)
        self.flush(deadline)

    # ---- ending ----------------------------------------------------------------------------------------

    def close(self, notify: bool = True) -> None:
        """Close; with `notify`, a TLS close_notify goes first if the socket takes it at once."""
        if notify and self.tls is not None:
            try:
                self.tls.unwrap()
            except (ssl.SSLError, ValueError):
                pass  # SSLWantReadError: the peer's close_notify is not waited for
            try:
                self.flush_nowait()
            except OSError:
                pass
        self.sock.close()

    def linger(self, seconds: float) -> None:
        """Close after an answer the client may still be sending a body to: stop writing, then drop what
        arrives for a while, so that closing with unread bytes does not reset the connection before the
        client has read the answer."""
        deadline = deadline_after(seconds)
        try:
            if self.tls is not None:
                try:
                    self.tls.unwrap()
                except (ssl.SSLError, ValueError):
                    pass
            self.flush(deadline)
            self.sock.shutdown(socket.SHUT_WR)
            while True:
                self.wait(self._readable, deadline)
                try:
                    if self.sock.recv_into(self._raw) == 0:
                        break
                except (BlockingIOError, InterruptedError):
                    continue
        except (OSError, ssl.SSLError):
            pass  # TimeoutError included: the client had its time
        finally:
            self.sock.close()

    def abort(self) -> None:
        """From another thread: wake whatever waits on this socket (it sees the end of the stream)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
