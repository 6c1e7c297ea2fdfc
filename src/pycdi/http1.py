"""HTTP/1.1 message rules shared by the upload proxy and the upload server, without I/O: request and status
lines, header fields, how a body is framed, chunk size lines, and the status line of an answer."""

from __future__ import annotations

import http
import re
import urllib.parse
from dataclasses import dataclass
from typing import Final

#: A head larger than this is refused (aiohttp's limits are 8 KiB a line and 32 KiB of headers).
MAX_HEAD: Final = 64 * 1024
MAX_HEADERS: Final = 128
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION = re.compile(r"^HTTP/1\.[01]$")
_FORBIDDEN = re.compile("[\r\n\x00]")
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?$")


class BadMessage(Exception):
    """A message that cannot be parsed (from a client: 400)."""


Headers = list[tuple[str, str]]


def header(headers: Headers, name: str) -> str | None:
    """The first value of a header (names compare without case)."""
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


def parse_headers(lines: list[str]) -> Headers:
    headers: Headers = []
    for line in lines:
        name, colon, value = line.partition(":")
        # No space before the colon, no folded line; no bare CR, LF or NUL, which a server the line is passed on
        # to might read as the end of the line (request smuggling).
        if not colon or not _TOKEN.match(name) or _FORBIDDEN.search(value):
            raise BadMessage(f"invalid header line {line[:64]!r}")
        headers.append((name, value.strip(" \t")))
    if len(headers) > MAX_HEADERS:
        raise BadMessage("too many headers")
    return headers


def parse_request_line(line: str) -> tuple[str, str, str]:
    """Method, target and version of a request line."""
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
        raise BadMessage(f"invalid request line {line[:64]!r}")
    if not _VERSION.match(parts[2]):
        raise BadMessage(f"unsupported version {parts[2][:16]!r}")
    return parts[0], parts[1], parts[2]


def parse_status_line(line: str) -> int:
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if not _VERSION.match(version) or not code.isdigit():
        raise BadMessage(f"invalid status line {line[:64]!r}")
    return int(code)


def target_path(target: str) -> str:
    """The decoded path of a request target, without the query (what aiohttp's `request.path` is)."""
    if target == "*":
        return target
    if "://" in target.split("?", 1)[0]:  # absolute form
        target = urllib.parse.urlsplit(target).path or "/"
    return urllib.parse.unquote(target.split("?", 1)[0])


def keep_alive(version: str, connection: str | None) -> bool:
    tokens = {t.strip().lower() for t in (connection or "").split(",")}
    return "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens


@dataclass
class Framing:
    """How a message's body ends: after `length` bytes, with the last chunk, or nothing at all."""

    length: int | None = None
    chunked: bool = False

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.length)

    @classmethod
    def of(cls, headers: Headers, version: str = "HTTP/1.1") -> Framing:
        encodings = [v for k, v in headers if k.lower() == "transfer-encoding"]
        lengths = {v.strip() for k, v in headers if k.lower() == "content-length"}
        if encodings:
            if lengths:
                raise BadMessage("Transfer-Encoding can't be present with Content-Length")
            codings = [c.strip().lower() for value in encodings for c in value.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise BadMessage(f"unsupported Transfer-Encoding {', '.join(encodings)[:40]!r}")
            if version == "HTTP/1.0":
                raise BadMessage("chunked body in an HTTP/1.0 message")
            return cls(chunked=True)
        if not lengths:
            return cls()
        text = next(iter(lengths))
        if len(lengths) > 1 or not text.isdigit() or not text.isascii():
            raise BadMessage(f"invalid Content-Length {text[:40]!r}")
        return cls(length=int(text))


def chunk_size(line: bytes) -> int:
    """The size on a chunk's size line (extensions ignored)."""
    match = _CHUNK_SIZE.match(line)
    if match is None:
        raise BadMessage(f"invalid chunk size {line[:20]!r}")
    return int(match.group(1), 16)


def status_line(status: int) -> str:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n"
