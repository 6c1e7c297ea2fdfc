"""The upload server's HTTP/1.1 reading over real sockets: heads, bodies by length and chunked, what is left for
the next request; the streamed form reader."""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from pycdi.datapath.errors import PermanentError
from pycdi.uploadserver import http
from pycdi.uploadserver.multipart import CHUNK, FormFile


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, http.Wire]]:
    client, server = socket.socketpair()
    client.settimeout(10)
    server.settimeout(10)
    yield client, http.Wire(server)
    client.close()
    server.close()


def body_of(request: http.Request, read: int = 5000) -> bytes:
    out = bytearray()
    buf = memoryview(bytearray(read))
    while n := request.body.readinto(buf):
        out += buf[:n]
    return bytes(out)


def test_heads_bodies_and_the_next_request_on_one_connection(pair: tuple[socket.socket, http.Wire]) -> None:
    client, wire = pair
    client.sendall(b"\r\nPOST /v1beta1/upload%2Dasync?x=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a:  2 \r\n"
                   b"Content-Type: Application/Octet-Stream; q=1\r\nContent-Length: 11\r\n\r\nhello world"
                   b"GET /healthz HTTP/1.0\r\n\r\n")
    first = http.read_request(wire)
    assert first is not None
    assert (first.method, first.path, first.version) == ("POST", "/v1beta1/upload-async", "HTTP/1.1")
    assert first.headers["x-a"] == "1, 2" and first.content_type == "application/octet-stream"
    assert first.content_length == 11 and first.keep_alive
    assert body_of(first, 4) == b"hello world" and first.body.done
    second = http.read_request(wire)
    assert second is not None and second.path == "/healthz" and not second.keep_alive and second.body.done
    client.shutdown(socket.SHUT_WR)
    assert http.read_request(wire) is None  # the client closed between requests


def test_a_chunked_body_across_many_sends(pair: tuple[socket.socket, http.Wire]) -> None:
    client, wire = pair
    data = os.urandom(300_000)
    wire_form = bytearray(b"POST /v1beta1/upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    for offset in range(0, len(data), 70_001):
        piece = data[offset:offset + 70_001]
        wire_form += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
    wire_form += b"0\r\nTrailer: yes\r\n\r\nGET /next HTTP/1.1\r\n\r\n"

    def send() -> None:
        for offset in range(0, len(wire_form), 999):  # lines and heads split anywhere
            client.sendall(wire_form[offset:offset + 999])

    sender = threading.Thread(target=send)
    sender.start()
    request = http.read_request(wire)
    assert request is not None and request.content_length is None
    assert body_of(request) == data and request.body.done and not request.body.broken
    following = http.read_request(wire)
    assert following is not None and following.path == "/next"
    sender.join()


def test_a_body_cut_short_and_malformed_heads(pair: tuple[socket.socket, http.Wire]) -> None:
    client, wire = pair
    client.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly this")
    client.shutdown(socket.SHUT_WR)
    request = http.read_request(wire)
    assert request is not None
    with pytest.raises(http.Cut):
        body_of(request)
    assert request.body.broken
    for head in (b"GET / HTTP/2.0\r\n\r\n", b"GET /\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                 b"GET / HTTP/1.1\r\nName : v\r\n\r\n", b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                 b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"):
        a, b = socket.socketpair()
        with a, b:
            a.sendall(head)
            with pytest.raises(http.BadRequest):
                http.read_request(http.Wire(b))
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20000)
        with pytest.raises(http.BadRequest, match="too large"):
            http.read_request(http.Wire(b))


def form(boundary: bytes, parts: list[tuple[str, bytes]], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = preamble
    for name, data in parts:
        out += (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + name.encode() +
                b"\"; filename=\"x\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    return out + b"--" + boundary + b"--\r\n" + epilogue


def read_all(reader: FormFile, size: int) -> bytes:
    out = bytearray()
    buf = memoryview(bytearray(size))
    while n := reader.readinto(buf):
        out += buf[:n]
    return bytes(out)


@pytest.mark.parametrize("size", [1, 4096, CHUNK])
def test_the_form_file_part_streams_out(size: int) -> None:
    boundary = b"----b0und4ry"
    # Look-alikes of the delimiter inside the data, and the real one straddling the reader's buffer size.
    data = b"\r\n--" + boundary[:-1] + b"x\r\n----" + os.urandom(CHUNK - 200) + b"\r\n-"
    body = form(boundary, [("note", b"skipped" * 1000), ("file", data), ("after", b"dropped")],
                preamble=b"ignored preamble\r\n", epilogue=b"epilogue")
    source = io.BytesIO(body)
    reader = FormFile(source, f"multipart/form-data; boundary=\"{boundary.decode()}\"")
    assert read_all(reader, size) == data
    assert source.tell() == len(body)  # read to the end: the request is over
    reader.close()
    assert source.closed


def test_forms_without_a_file_and_bodies_that_are_no_form() -> None:
    no_file = form(b"b", [("image", b"data")])
    with pytest.raises(PermanentError, match="the form has no 'file' field"):
        FormFile(io.BytesIO(no_file), "multipart/form-data; boundary=b").readinto(memoryview(bytearray(10)))
    with pytest.raises(PermanentError, match="multipart/\\* content type expected"):
        FormFile(io.BytesIO(b"x"), "application/octet-stream").readinto(memoryview(bytearray(10)))
    with pytest.raises(PermanentError, match="boundary missed"):
        FormFile(io.BytesIO(b"x"), "multipart/form-data").readinto(memoryview(bytearray(10)))
    truncated = form(b"b", [("file", b"data" * 100)])[:60]
    with pytest.raises(PermanentError, match="ends inside"):
        read_all(FormFile(io.BytesIO(truncated), "multipart/form-data; boundary=b"), 100)
