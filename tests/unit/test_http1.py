"""The HTTP/1.1 message rules the upload proxy and the upload server share."""

from __future__ import annotations

import pytest

from pycdi import http1


def test_a_request_line_and_its_fields() -> None:
    assert http1.parse_request_line("POST /v1beta1/upload HTTP/1.1") == ("POST", "/v1beta1/upload", "HTTP/1.1")
    for line in ("GET / HTTP/2.0", "GET /", "G(T / HTTP/1.1", "GET  / HTTP/1.1"):
        with pytest.raises(http1.BadMessage):
            http1.parse_request_line(line)
    assert http1.parse_headers(["Host: a", "X-A:  1 "]) == [("Host", "a"), ("X-A", "1")]
    for line in ("Bad Header", "Name : v", " folded: v", "X: a\x00b"):
        with pytest.raises(http1.BadMessage, match="invalid header line"):
            http1.parse_headers([line])


@pytest.mark.parametrize(("headers", "version", "framing"), [
    ([], "HTTP/1.1", http1.Framing()),
    ([("Content-Length", "12")], "HTTP/1.1", http1.Framing(length=12)),
    ([("content-length", "12"), ("Content-Length", "12")], "HTTP/1.1", http1.Framing(length=12)),
    ([("Transfer-Encoding", "chunked")], "HTTP/1.1", http1.Framing(chunked=True)),
])
def test_how_a_body_is_framed(headers: http1.Headers, version: str, framing: http1.Framing) -> None:
    assert http1.Framing.of(headers, version) == framing


@pytest.mark.parametrize(("headers", "version"), [
    ([("Content-Length", "1"), ("Transfer-Encoding", "chunked")], "HTTP/1.1"),  # smuggling
    ([("Content-Length", "1"), ("Content-Length", "2")], "HTTP/1.1"),
    ([("Content-Length", "-1")], "HTTP/1.1"),
    ([("Content-Length", "١")], "HTTP/1.1"),  # a digit, not an ASCII one
    ([("Transfer-Encoding", "gzip, chunked")], "HTTP/1.1"),
    ([("Transfer-Encoding", "chunked")], "HTTP/1.0"),
])
def test_framings_refused(headers: http1.Headers, version: str) -> None:
    with pytest.raises(http1.BadMessage):
        http1.Framing.of(headers, version)


def test_chunk_sizes_paths_and_connections() -> None:
    assert http1.chunk_size(b"1a;ext=1") == 26 and http1.chunk_size(b"0") == 0
    for line in (b"", b"-1", b"x", b"1" * 16, b" 5"):
        with pytest.raises(http1.BadMessage, match="invalid chunk size"):
            http1.chunk_size(line)
    assert http1.target_path("/v1beta1/upload%2Dasync?x=1") == "/v1beta1/upload-async"
    assert http1.target_path("https://proxy:8443/healthz?a") == "/healthz"
    assert http1.keep_alive("HTTP/1.1", None) and not http1.keep_alive("HTTP/1.1", "Close")
    assert not http1.keep_alive("HTTP/1.0", None) and http1.keep_alive("HTTP/1.0", "keep-alive")
    assert http1.status_line(503) == "HTTP/1.1 503 Service Unavailable\r\n"
