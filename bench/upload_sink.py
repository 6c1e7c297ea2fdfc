"""The upload benchmark's baseline server: takes one HTTP(S) PUT/POST body at a time and writes it to a file the
way `dd bs=1M conv=sparse,fsync` would (zero blocks left as holes, fsync before the answer); with `--dense`, as
plain `dd conv=fsync` (every byte written, the research notes' socket sink).

Run as `python -m bench.upload_sink --out FILE --port-file PATH [--cert CRT --key KEY] [--dense]`; it serves
until killed.
A raw socket server, not an HTTP framework: the floor a Python upload server could reach.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
from pathlib import Path

CHUNK = 1 << 20
BLOCK = 64 * 1024  # hole granularity, as the upload server's sparse writer
_ZERO = bytes(BLOCK)


def _headers(conn: socket.socket) -> tuple[bytes, bytes]:
    """The request head and whatever body bytes came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        got = conn.recv(65536)
        if not got:
            raise ConnectionError("the client closed before sending its headers")
        data += got
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _write_sparse(fd: int, buf: bytearray, n: int, offset: int) -> None:
    """The first `n` bytes of `buf` at `offset`: runs of non-zero 64 KiB blocks written, zero blocks skipped
    (they stay holes in the fresh file). `startswith` with bounds compares in place, without copies."""
    view = memoryview(buf)
    start = 0
    run = -1  # start of the current non-zero run
    while start < n:
        end = min(start + BLOCK, n)
        zero = buf.startswith(_ZERO if end - start == BLOCK else _ZERO[: end - start], start, end)
        if zero and run >= 0:
            os.pwrite(fd, view[run:start], offset + run)
            run = -1
        elif not zero and run < 0:
            run = start
        start = end
    if run >= 0:
        os.pwrite(fd, view[run:n], offset + run)


def _write_dense(fd: int, buf: bytearray, n: int, offset: int) -> None:
    os.pwrite(fd, memoryview(buf)[:n], offset)


def serve_one(conn: socket.socket, out: Path, dense: bool = False) -> None:
    head, rest = _headers(conn)
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(fields.get("content-length", "0"))
    if fields.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    write = _write_dense if dense else _write_sparse
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        done = len(rest)
        write(fd, bytearray(rest), len(rest), 0)
        while done < length:
            filled = 0
            while filled < CHUNK and done + filled < length:
                got = conn.recv_into(view[filled:], min(CHUNK - filled, length - done - filled))
                if not got:
                    raise ConnectionError(f"the body ended after {done + filled} of {length} bytes")
                filled += got
            write(fd, buffer, filled, done)
            done += filled
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--dense", action="store_true", help="write zero blocks too")
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    listener = socket.create_server(("127.0.0.1", 0))
    args.port_file.write_text(str(listener.getsockname()[1]))
    while True:
        raw, _ = listener.accept()
        conn = context.wrap_socket(raw, server_side=True) if context else raw
        try:
            serve_one(conn, args.out, args.dense)
        except (OSError, ValueError) as err:
            print(f"upload sink: {err}", flush=True)
        finally:
            conn.close()


if __name__ == "__main__":
    main()
