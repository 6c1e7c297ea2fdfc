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
import socket
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from ..pipeline import BufferRing, WriteBehind
from ..sparse import DirectWrites
from . import protocol as p
from . import tls
from .extents import Extents, open_volume
from .zero import zero_range

log = logging.getLogger(__name__)

ACCEPT_BACKLOG = 4
#: Frame buffers between the receiving thread and the writer.
BUFFERS = 3
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


def _open_image(config: TargetConfig) -> Extents:
    if not config.block:
        # A fresh, empty file: every range no frame covers stays a hole.
        fd = os.open(config.destination, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        os.fchmod(fd, 0o660)  # as the importer leaves disk.img, whatever the worker's umask
        os.ftruncate(fd, 0)
        os.close(fd)
    return open_volume(config.destination, write=True)


def _receive_frames(lines: p.Lines, size: int) -> Callable[[BufferRing], None]:
    """The ring's producer: frames off the wire, in order and within the volume, until the end mark."""

    def produce(ring: BufferRing) -> None:
        head = bytearray(p.FRAME.size)
        expected = 0
        while True:
            lines.exact(memoryview(head))
            offset, length = p.FRAME.unpack(head)
            if offset == p.END:
                return
            if length > p.MAX_FRAME or offset < expected or offset + length > size:
                raise p.ProtocolError(f"frame [{offset}, +{length}) out of order or beyond {size}")
            buf = ring.free_buffer()
            if buf is None:
                return
            lines.exact(memoryview(buf)[:length])
            ring.publish(offset, buf, length)
            expected = offset + length

    return produce


def _receive_image(lines: p.Lines, config: TargetConfig, header: p.Header, volume: Extents) -> TargetResult:
    expected = 0  # where the next frame would start if there were no holes
    written = 0
    receiver = BufferRing(_receive_frames(lines, header.size), name="clone-receive", depth=BUFFERS,
                          size=p.MAX_FRAME)
    # A file on a local disk is written past the page cache (see sparse.DirectWrites), anything else through it,
    # with its writeback started early.
    direct = None if config.block else DirectWrites.open(config.destination, p.MAX_FRAME)
    behind = WriteBehind(volume.fd, name="clone-writeback") if direct is None else None
    try:
        for offset, buf, length in receiver:
            if config.block and offset > expected:
                zero_range(volume, expected, offset - expected)
            chunk = memoryview(buf)[:length]
            done = direct.write(chunk, offset) if direct is not None else 0
            while done < length:
                done += os.pwrite(volume.fd, chunk[done:], offset + done)
            receiver.release(buf)
            written += length
            expected = offset + length
            if behind is not None:
                behind.advance(expected)
    finally:
        receiver.close(wait=5)
        if behind is not None:
            behind.close()
        if direct is not None:
            direct.close()
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
