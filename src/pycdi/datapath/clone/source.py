"""The clone source worker: reads its volume's data ranges (never the holes) and streams them to the target.

A thread reads ahead into a few large buffers while this one leaves out the zero blocks in them and sends the
rest as frames, so reading the disk and sending overlap. An archive is read by `tar --sparse`. The stream goes
over TLS to a target presenting the clone's certificate, and no other.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from ..pipeline import BufferRing
from . import protocol as p
from . import tls
from .extents import Extents, open_volume

log = logging.getLogger(__name__)

#: Zero runs this size and aligned are left out (the target's filesystem blocks are 4 KiB; 64 KiB keeps the
#: check cheap, as the importer's sparse writer does).
ZERO_BLOCK = 64 << 10
_ZEROS = bytes(ZERO_BLOCK)
#: Frame buffers between the reading thread and the sender.
BUFFERS = 3
CONNECT_TIMEOUT = 120.0

Progress = Callable[[float], None]


@dataclass(frozen=True)
class SourceConfig:
    host: str
    port: int
    #: `disk.img` in the volume (Filesystem), the device (Block), or the volume's directory (archive).
    path: str
    content_type: str
    secret: str
    #: The clone's certificate (PEM): the only one the target may present.
    tls_cert: str
    connect_timeout: float = CONNECT_TIMEOUT


@dataclass(frozen=True)
class SourceResult:
    size: int
    sent: int
    target: str


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """Connect, retrying while the target is not listening yet (its pod may start after ours); plain TCP."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=30)
            sock.settimeout(None)
            p.tune(sock)
            return sock
        except OSError as e:
            if time.monotonic() >= deadline:
                raise p.ProtocolError(f"cannot reach the clone target {host}:{port}: {e}") from e
            time.sleep(delay)  # nothing to watch from here: the target's socket appears when it does
            delay = min(delay * 2, 1.0)


def _chunks(volume: Extents) -> Iterator[tuple[int, int]]:
    """(offset, length) pieces of at most one frame, covering the volume's data ranges."""
    for start, length in volume.data():
        end = start + length
        while start < end:
            n = min(p.MAX_FRAME, end - start)
            yield start, n
            start += n


def _read_volume(volume: Extents) -> Callable[[BufferRing], None]:
    """The ring's producer: the volume's data ranges, a frame at a time."""

    def produce(ring: BufferRing) -> None:
        for offset, length in _chunks(volume):
            buf = ring.free_buffer()
            if buf is None:
                return
            view = memoryview(buf)[:length]
            got = 0
            while got < length:
                n = os.preadv(volume.read_fd, [view[got:]], volume.read_base + offset + got)
                if n == 0:
                    raise OSError(f"the source ended at {offset + got}, before its size {volume.size}")
                got += n
            ring.publish(offset, buf, length)

    return produce


def _send_data(sock: socket.socket, offset: int, buf: bytearray, n: int) -> int:
    """Send the non-zero runs of buf[:n] as frames; returns the bytes sent."""
    view = memoryview(buf)
    sent = 0
    start: int | None = None
    pos = 0
    while pos < n:
        end = min(pos + ZERO_BLOCK, n)
        # startswith compares in place (memcmp), no copy of the block.
        if buf.startswith(_ZEROS if end - pos == ZERO_BLOCK else _ZEROS[:end - pos], pos, end):
            if start is not None:
                sock.sendall(p.FRAME.pack(offset + start, pos - start))
                sock.sendall(view[start:pos])
                sent += pos - start
                start = None
        elif start is None:
            start = pos
        pos = end
    if start is not None:
        sock.sendall(p.FRAME.pack(offset + start, n - start))
        sock.sendall(view[start:n])
        sent += n - start
    return sent


def _send_image(sock: socket.socket, volume: Extents, progress: Progress) -> int:
    reader = BufferRing(_read_volume(volume), name="clone-read", depth=BUFFERS, size=p.MAX_FRAME)
    sent = 0
    try:
        for offset, buf, n in reader:
            sent += _send_data(sock, offset, buf, n)
            reader.release(buf)
            progress(100.0 * (offset + n) / max(volume.size, 1))
    finally:
        reader.close()
    return sent


def tree_size(path: str) -> int:
    """Allocated bytes below a directory: the archive's progress denominator."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def _send_archive(sock: socket.socket, path: str, size: int, progress: Progress) -> int:
    proc = subprocess.Popen(["tar", "--create", "--sparse", "--file", "-", "--directory", path, "."],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout: IO[bytes] = proc.stdout  # type: ignore[assignment]
    buf = bytearray(p.MAX_FRAME)
    sent = 0
    try:
        while True:
            n = stdout.readinto(memoryview(buf))  # type: ignore[attr-defined]
            if not n:
                break
            sock.sendall(p.FRAME.pack(sent, n))
            sock.sendall(memoryview(buf)[:n])
            sent += n
            progress(min(99.0, 100.0 * sent / max(size, 1)))
        _, err = proc.communicate()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise p.ProtocolError(f"archiving {path} failed: {err.decode(errors='replace').strip()}")
    return sent


def _secure(sock: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket:
    """The TLS session over a connected socket: the target proves it holds the clone's key before any byte of the
    secret or the volume leaves."""
    try:
        return tls.wrap_client(sock, context)
    except ssl.SSLError as e:
        sock.close()
        raise p.ProtocolError(f"TLS handshake with the clone target failed: {e}") from e
    except BaseException:
        sock.close()
        raise


def run(config: SourceConfig, progress: Progress = lambda _p: None) -> SourceResult:
    """Stream the source to the target; returns once the target confirmed its data durable."""
    volume: Extents | None = None
    if config.content_type == p.ARCHIVE:
        size = tree_size(config.path)
    else:
        volume = open_volume(config.path)
        size = volume.size
    try:
        context = tls.client_context(config.tls_cert)
        with _secure(connect(config.host, config.port, config.connect_timeout), context) as sock:
            lines = p.Lines(sock)
            sock.sendall(p.GREETING + config.secret.encode() + b"\n" + p.Header(config.content_type, size).encode())
            p.parse_reply(lines.line(), "OK")
            if volume is not None:
                sent = _send_image(sock, volume, progress)
            else:
                sent = _send_archive(sock, config.path, size, progress)
            sock.sendall(p.FRAME.pack(p.END, 0))
            detail = p.parse_reply(lines.line(), "DONE")
    finally:
        if volume is not None:
            volume.close()
    progress(100.0)
    log.info("clone source sent %d bytes of data of %d", sent, size)
    return SourceResult(size, sent, detail)
