"""Go's `net/url` and CDI's checksum parsing, as far as upstream's webhook relies on them to accept or refuse."""

from __future__ import annotations

import string
from dataclasses import dataclass


class URLError(ValueError):
    """The text is not a URL Go would parse."""


@dataclass(frozen=True)
class ParsedURL:
    scheme: str
    host: str
    opaque: str
    path: str


_SCHEME_FIRST = set(string.ascii_letters)
_SCHEME_REST = _SCHEME_FIRST | set(string.digits) | set("+-.")
_HEX = set(string.hexdigits)
# Characters Go leaves unescaped in a host (`shouldEscape` with encodeHost): letters, digits, `-._~`, the
# sub-delims and `:[]<>"`; `%` only starts an escape. Anything else (space, `{`, `|`, `\`...) is an error.
_HOST_OK = set(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:[]<>\"")
_USERINFO_OK = set(string.ascii_letters + string.digits + "-._:~!$&'()*+,;=%@")


def _has_ctl(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _check_escapes(text: str) -> None:
    """Every `%` starts a two-digit hex escape, as Go's `unescape` insists."""
    i = 0
    while i < len(text):
        if text[i] == "%":
            if i + 2 >= len(text) or text[i + 1] not in _HEX or text[i + 2] not in _HEX:
                raise URLError(f'invalid URL escape "{text[i:i + 3]}"')
            i += 3
        else:
            i += 1


def _split_scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if c in _SCHEME_FIRST:
            continue
        if c in _SCHEME_REST:
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise URLError("missing protocol scheme")
            return raw[:i], raw[i + 1:]
        return "", raw  # an invalid character before any colon: there is no scheme
    return "", raw


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise URLError("missing ']' in host")
        port = host[end + 1:]
        if port and (not port.startswith(":") or not port[1:].isdigit() and port != ":"):
            raise URLError(f'invalid port "{port}" after host')
        return host
    colon = host.rfind(":")
    if colon >= 0:
        port = host[colon + 1:]
        if port and not port.isdigit():
            raise URLError(f'invalid port ":{port}" after host')
    _check_escapes(host)
    for c in host:
        if c not in _HOST_OK and c != "%" and ord(c) < 0x80:
            raise URLError(f'invalid character "{c}" in host name')
    return host


def parse(raw: str, *, via_request: bool = False) -> ParsedURL:
    """`url.Parse` (via_request=False, the fragment cut off first) or `url.ParseRequestURI` (True)."""
    if not via_request:
        raw = raw.split("#", 1)[0]
    if _has_ctl(raw):
        raise URLError("net/url: invalid control character in URL")
    if not raw and via_request:
        raise URLError("empty url")
    if raw == "*":
        return ParsedURL("", "", "", "*")
    scheme, rest = _split_scheme(raw)
    scheme = scheme.lower()
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest = rest.split("?", 1)[0]
    if not rest.startswith("/"):
        if scheme:
            return ParsedURL(scheme, "", rest, "")  # a rootless path: opaque, as RFC 3986 says
        if via_request:
            raise URLError("invalid URI for request")
        if ":" in rest.split("/", 1)[0]:
            raise URLError("first path segment in URL cannot contain colon")
    host = ""
    if (scheme or (not via_request and not rest.startswith("///"))) and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        userinfo, at, hostport = authority.rpartition("@")
        if at and any(c not in _USERINFO_OK for c in userinfo):
            raise URLError("net/url: invalid userinfo")
        host = _parse_host(hostport if at else authority)
    _check_escapes(rest)
    return ParsedURL(scheme, host, "", rest)


# ---- checksums (`pkg/util/checksum`) ----------------------------------------------------------------------

CHECKSUM_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}


def _go_rune(c: str) -> str:
    """Go's `%#U`: `U+0067 'g'`, without the quoted character when it is not printable."""
    code = f"U+{ord(c):04X}"
    return f"{code} '{c}'" if c.isprintable() else code


def parse_checksum(text: str) -> tuple[str, str]:
    """(algorithm, hex digest) of `algorithm:hex`; ValueError with upstream's message otherwise."""
    algorithm, sep, digest = text.partition(":")
    if not sep:
        raise ValueError(f"invalid checksum format: expected 'algorithm:hash', got '{text}'")
    algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
    if not digest:
        raise ValueError("checksum hash value cannot be empty")
    expected = CHECKSUM_LENGTHS.get(algorithm)
    if expected is None:
        raise ValueError(f"unsupported hash algorithm '{algorithm}': supported algorithms are: "
                         "md5, sha1, sha256, sha512")
    if len(digest) != expected:
        raise ValueError(f"invalid {algorithm} hash length: expected {expected} hex characters, got {len(digest)}")
    for c in digest:
        if c not in _HEX:
            raise ValueError(f"checksum hash is not valid hexadecimal: encoding/hex: invalid byte: {_go_rune(c)}")
    return algorithm, digest


__all__ = ["ParsedURL", "URLError", "parse", "parse_checksum", "CHECKSUM_LENGTHS"]
