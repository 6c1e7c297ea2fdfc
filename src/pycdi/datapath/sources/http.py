"""HTTP(S) source on stdlib urllib: probe (size, ranges), stream, errors classified permanent or transient."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from ..errors import DataPathError, PermanentError, TransientError
from ..tls import ssl_context
from .base import Probe

USER_AGENT = "cdi-golang-importer"
#: A transfer with no bytes for this long is abandoned (upstream: a 10 minute stall).
STALL_SECONDS = 600.0
#: Small ranged requests timed on one open connection to measure the link (the minimum is kept).
RTT_SAMPLES = 3
#: Client errors that retrying will not fix.
_PERMANENT_STATUS = frozenset({400, 401, 403, 404, 405, 406, 407, 410, 414, 451})


@dataclass
class HttpConfig:
    """Everything an HTTP import needs to reach its source."""

    url: str
    access_key: str = ""
    secret_key: str = ""
    cert_dirs: list[str | None] = field(default_factory=list)
    insecure: bool = False
    headers: list[str] = field(default_factory=list)
    timeout: float = STALL_SECONDS

    def header_pairs(self) -> list[tuple[str, str]]:
        pairs = [("User-Agent", USER_AGENT)]
        for line in self.headers:
            name, sep, value = line.partition(":")
            if sep and name.strip():
                pairs.append((name.strip(), value.strip()))
        if self.access_key or self.secret_key:
            token = base64.b64encode(f"{self.access_key}:{self.secret_key}".encode()).decode()
            pairs.append(("Authorization", f"Basic {token}"))
        return pairs


def _status_error(code: int, reason: str, url: str) -> DataPathError:
    message = f"expected status code 200, got {code} ({reason}) from {url}"
    if code in _PERMANENT_STATUS:
        return PermanentError(message)
    return TransientError(message)


def classify(err: BaseException, url: str) -> DataPathError:
    """Map a client exception to a typed error the controller can act on."""
    if isinstance(err, DataPathError):
        return err
    if isinstance(err, urllib.error.HTTPError):
        return _status_error(err.code, str(err.reason), url)
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, ssl.SSLCertVerificationError):
        return PermanentError(f"TLS verification of {url} failed: {reason.verify_message or reason}")
    if isinstance(reason, ssl.SSLError):
        return PermanentError(f"TLS handshake with {url} failed: {reason}")
    if isinstance(reason, socket.gaierror):
        return TransientError(f"cannot resolve the host of {url}: {reason}")
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return TransientError(f"timed out talking to {url}")
    if isinstance(reason, (ConnectionError, http.client.HTTPException, OSError)):
        return TransientError(f"connection to {url} failed: {reason}")
    if isinstance(err, ValueError):
        return PermanentError(f"invalid URL {url}: {err}")
    return TransientError(f"request to {url} failed: {err}")


def refuse_html(content_type: str, url: str) -> None:
    """A web page where a disk image is expected (a login page, a directory listing) is a permanent failure."""
    if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        raise PermanentError(
            f"{url} returned an HTML page (Content-Type: {content_type}) instead of a disk image"
        )


class HttpStream:
    """A response body that reports a short body or a broken connection as a TransientError."""

    def __init__(self, response: http.client.HTTPResponse, url: str, length: int | None) -> None:
        self._r = response
        self._url = url
        self.length = length
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        try:
            data = self._r.read(size if size >= 0 else 1 << 20)
        except (OSError, http.client.HTTPException) as err:
            raise classify(err, self._url) from err
        self.count += len(data)
        if not data and self.length is not None and self.count < self.length:
            raise TransientError(
                f"connection to {self._url} closed after {self.count} of {self.length} bytes"
            )
        return data

    def close(self) -> None:
        self._r.close()


class HttpSource:
    """One URL, with its auth, CA, headers and the proxies of the environment."""

    def __init__(self, config: HttpConfig) -> None:
        self.config = config
        ctx = ssl_context(config.cert_dirs, config.insecure)
        self._ssl = ctx
        # ProxyHandler() reads http_proxy/https_proxy/no_proxy from the environment, as upstream's client does.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(), urllib.request.HTTPSHandler(context=ctx)
        )

    def _request(self, method: str, extra: dict[str, str] | None = None) -> urllib.request.Request:
        req = urllib.request.Request(self.config.url, method=method)
        for name, value in self.config.header_pairs():
            req.add_header(name, value)  # add_header (not unredirected): auth follows redirects, as upstream
        for name, value in (extra or {}).items():
            req.add_header(name, value)
        return req

    def _open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        try:
            resp = self._opener.open(req, timeout=self.config.timeout)
        except Exception as err:
            raise classify(err, self.config.url) from err
        assert isinstance(resp, http.client.HTTPResponse)
        return resp

    @property
    def name(self) -> str:
        return self.config.url

    def ranged(self) -> HttpConfig | None:
        return self.config

    def measure_rtt(self) -> float | None:
        """The link's round trip: the fastest of a few one-byte ranged GETs on one kept-alive connection.

        Connection and TLS set-up are left out on purpose: nbdkit keeps its connection, so what it pays per
        request is this round trip. None when the link cannot be measured (a proxy, a refused request)."""
        if any(os.environ.get(v) for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")):
            return None
        parts = urllib.parse.urlsplit(self.config.url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=30, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = dict(self.config.header_pairs())
        headers["Range"] = "bytes=0-0"
        best: float | None = None
        try:
            for _ in range(RTT_SAMPLES):
                start = time.monotonic()
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 206:
                    return None
                elapsed = time.monotonic() - start
                best = elapsed if best is None else min(best, elapsed)
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
        return best

    def probe(self) -> Probe:
        """HEAD for size and range support; servers that refuse HEAD get a one-byte ranged GET instead."""
        try:
            resp = self._open(self._request("HEAD"))
        except PermanentError as err:
            if "got 405" not in str(err) and "got 501" not in str(err):
                raise
            return self._probe_range()
        with resp:
            length = resp.headers.get("Content-Length")
            ctype = resp.headers.get("Content-Type", "")
            ranges = resp.headers.get("Accept-Ranges", "").lower() == "bytes"
            return Probe(int(length) if length and length.isdigit() else None, ranges, ctype, resp.geturl())

    def _probe_range(self) -> Probe:
        resp = self._open(self._request("GET", {"Range": "bytes=0-0"}))
        with resp:
            ctype = resp.headers.get("Content-Type", "")
            if resp.status == 206:
                total = resp.headers.get("Content-Range", "").rpartition("/")[2]
                return Probe(int(total) if total.isdigit() else None, True, ctype, resp.geturl())
            length = resp.headers.get("Content-Length")
            return Probe(int(length) if length and length.isdigit() else None, False, ctype, resp.geturl())

    def open(self) -> HttpStream:
        """GET the whole resource; anything but 200 is an error."""
        resp = self._open(self._request("GET"))
        if resp.status != 200:
            resp.close()
            raise _status_error(resp.status, resp.reason, self.config.url)
        refuse_html(resp.headers.get("Content-Type", ""), self.config.url)
        length = resp.headers.get("Content-Length")
        return HttpStream(resp, self.config.url, int(length) if length and length.isdigit() else None)
