"""The clone target worker: accepts the source worker's stream and writes it into its volume.

A disk image lands in `disk.img` (Filesystem) or on the device (Block) exactly where each frame says; what no
frame covers reads as zeros (a fresh file is all hole; on a device only the ranges that hold data are zeroed out).
An archive is extracted by `tar`. The connection is TLS (this worker serves the clone's certificate) and must
present the shared secret first; a broken or refused session leaves the worker listening for the source's next
attempt.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from . import protocol as p
from . import tls
from .extents import Extents, open_volume
from .zero import zero_range

log = logging.getLogger(__name__)

#: Start the writeback of each this-many bytes behind the write head (the closing fsync then finds little left).
WRITEBACK_STEP = 32 << 20
ACCEPT_BACKLOG = 4
#: Frame buffers between the receiving thread and the writer.
DEPTH = 3
#: How long a peer may take to finish the TLS handshake and send its greeting, secret and header: the source
#: sends them at once; a peer that connects and stays silent must not hold the only session slot.
HELLO_TIMEOUT = 60.0


@dataclass(frozen=True)
class TargetConfig:
    listen_address: str
    port: int
    #: `disk.img` in the volume (Filesystem), the device (Block), or the volume's directory (archive).
    destination: str
    block: bool
    content_type: str
    secret: str
    #: The clone's certificate and its key (PEM), served to the source.
    tls_cert: str
    tls_key: str
    preallocation: bool = False


@dataclass(frozen=True)
class TargetResult:
    size: int
    written: int
    preallocation_applied: bool


class _WriteBehind:
    """Asks the kernel, in a thread, to write back and drop what is behind the write head."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.done = 0
        self.wanted = 0
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="clone-writeback", daemon=True)
        self.thread.start()

    def advance(self, offset: int) -> None:
        if offset - self.wanted >= WRITEBACK_STEP:
            with self.cond:
                self.wanted = offset
                self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while self.wanted <= self.done and not self.closed:
                    self.cond.wait()
                if self.closed:
                    return
                start, end = self.done, self.wanted
            try:
                os.posix_fadvise(self.fd, start, end - start, os.POSIX_FADV_DONTNEED)
            except OSError:
                return  # only an optimisation
            self.done = end

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join()


def _open_image(config: TargetConfig) -> Extents:
    if not config.block:
        # A fresh, empty file: every range no frame covers stays a hole.
        fd = os.open(config.destination, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        os.fchmod(fd, 0o660)  # as the importer leaves disk.img, whatever the worker's umask
        os.ftruncate(fd, 0)
        os.close(fd)
    return open_volume(config.destination, write=True)


class _Receiver:
    """Reads frames into a few buffers in a thread, so receiving the next frame overlaps writing this one."""

    def __init__(self, lines: p.Lines, size: int) -> None:
        self.lines = lines
        self.size = size
        self.free: queue.Queue[bytearray] = queue.Queue()
        self.full: queue.Queue[tuple[int, bytearray, int] | BaseException | None] = queue.Queue()
        self.stop = threading.Event()
        for _ in range(DEPTH):
            self.free.put(bytearray(p.MAX_FRAME))
        self.thread = threading.Thread(target=self._run, name="clone-receive", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        head = bytearray(p.FRAME.size)
        expected = 0
        try:
            while True:
                self.lines.exact(memoryview(head))
                offset, length = p.FRAME.unpack(head)
                if offset == p.END:
                    self.full.put(None)
                    return
                if length > p.MAX_FRAME or offset < expected or offset + length > self.size:
                    raise p.ProtocolError(f"frame [{offset}, +{length}) out of order or beyond {self.size}")
                buf = self.free.get()
                if self.stop.is_set():
                    return
                self.lines.exact(memoryview(buf)[:length])
                self.full.put((offset, buf, length))
                expected = offset + length
        except BaseException as e:  # handed to the writer, which raises it
            self.full.put(e)

    def frames(self) -> Iterator[tuple[int, bytearray, int]]:
        while True:
            item = self.full.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def release(self, buf: bytearray) -> None:
        self.free.put(buf)

    def close(self) -> None:
        self.stop.set()
        self.free.put(bytearray(0))
        self.thread.join(5)


def _receive_image(lines: p.Lines, config: TargetConfig, header: p.Header, volume: Extents) -> TargetResult:
    expected = 0  # where the next frame would start if there were no holes
    written = 0
    receiver = _Receiver(lines, header.size)
    behind = _WriteBehind(volume.fd)
    try:
        for offset, buf, length in receiver.frames():
            if config.block and offset > expected:
                zero_range(volume, expected, offset - expected)
            chunk = memoryview(buf)[:length]
            done = 0
            while done < length:
                done += os.pwrite(volume.fd, chunk[done:], offset + done)
            receiver.release(buf)
            written += length
            expected = offset + length
            behind.advance(expected)
    finally:
        receiver.close()
        behind.close()
    if config.block:
        zero_range(volume, expected, header.size - expected)
    else:
        os.ftruncate(volume.fd, header.size)
    applied = False
    if config.preallocation and not config.block:
        os.posix_fallocate(volume.fd, 0, header.size)
        applied = True
    os.fsync(volume.fd)
    return TargetResult(header.size, written, applied)


def _receive_archive(lines: p.Lines, config: TargetConfig) -> TargetResult:
    """A tar stream into the directory (the source sent `tar --sparse`; GNU tar restores the holes)."""
    proc = subprocess.Popen(["tar", "--extract", "--sparse", "--no-same-owner", "--file", "-", "--directory",
                             config.destination], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    stdin: IO[bytes] = proc.stdin  # type: ignore[assignment]
    buf = bytearray(p.MAX_FRAME)
    head = bytearray(p.FRAME.size)
    written = 0
    try:
        while True:
            lines.exact(memoryview(head))
            offset, length = p.FRAME.unpack(head)
            if offset == p.END:
                break
            if length > p.MAX_FRAME:
                raise p.ProtocolError(f"frame of {length} bytes")
            chunk = memoryview(buf)[:length]
            lines.exact(chunk)
            stdin.write(chunk)
            written += length
        stdin.close()
        err = proc.stderr.read() if proc.stderr is not None else b""
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise p.ProtocolError(f"extracting the archive failed: {err.decode(errors='replace').strip()}")
    fd = os.open(config.destination, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
        os.sync()  # the files tar wrote (syncfs of their filesystem)
    finally:
        os.close(fd)
    return TargetResult(written, written, False)


def _session(conn: socket.socket, config: TargetConfig) -> TargetResult:
    lines = p.Lines(conn)
    if lines.line() != p.GREETING:
        raise p.ProtocolError("not a clone source")
    if not p.same_secret(lines.line(), config.secret):
        p.reply(conn, "ERR", "authentication failed")
        raise p.ProtocolError("a client failed to authenticate")
    header = p.Header.decode(lines.line())
    conn.settimeout(None)  # the data: as long as it takes (and blocking I/O is the fastest path through ssl)
    if header.content_type != config.content_type:
        p.reply(conn, "ERR", f"source contentType ({header.content_type}) and target contentType "
                             f"({config.content_type}) do not match")
        raise p.ProtocolError("content types differ")
    if header.content_type == p.ARCHIVE:
        p.reply(conn, "OK")
        result = _receive_archive(lines, config)
    else:
        volume = _open_image(config)
        try:
            if header.size > volume.size and config.block:
                message = (f"the source ({header.size} bytes) does not fit the target device "
                           f"({volume.size} bytes)")
                p.reply(conn, "ERR", message)
                raise p.ProtocolError(message)
            p.reply(conn, "OK")
            result = _receive_image(lines, config, header, volume)
        finally:
            volume.close()
    p.reply(conn, "DONE", {"size": result.size, "written": result.written,
                           "preallocationApplied": result.preallocation_applied})
    return result


def _secure_session(conn: socket.socket, context: ssl.SSLContext, config: TargetConfig) -> TargetResult:
    """One session over TLS; the connection is closed after it, whatever happened (a peer that does not speak
    TLS, or does not accept this certificate, fails the handshake: an ssl.SSLError, an OSError)."""
    with conn:
        p.tune(conn)
        conn.settimeout(HELLO_TIMEOUT)  # for the handshake and the lines before the data (the TLS socket keeps it)
        with tls.wrap_server(conn, context) as secure:
            return _session(secure, config)


def serve(config: TargetConfig, on_listening: Callable[[int], None] | None = None) -> TargetResult:
    """Listen until one source completes its transfer; returns what was written."""
    context = tls.server_context(config.tls_cert, config.tls_key)
    family = socket.AF_INET6 if ":" in config.listen_address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((config.listen_address, config.port))
        server.listen(ACCEPT_BACKLOG)
        log.info("clone target listening on %s:%d for %s", config.listen_address, server.getsockname()[1],
                 config.destination)
        if on_listening is not None:
            on_listening(int(server.getsockname()[1]))
        while True:
            conn, peer = server.accept()
            try:
                result = _secure_session(conn, context, config)
            except (p.ProtocolError, OSError) as e:
                log.warning("clone session from %s failed: %s", peer[0], e)
                continue
            log.info("clone complete: %d bytes of data, %d in all", result.written, result.size)
            return result
