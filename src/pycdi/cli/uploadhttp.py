"""The client side of an upload: discover the async endpoint and stream a file to the upload proxy.

Blocking `http.client` in a worker thread: one long request body sent with large `sendall`s from one reused
buffer (research/perf-detailed.md: http.client was the fastest Python uploader measured into aiohttp); the
file is read a chunk at a time, never whole.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Protocol

from ..api import upload as u

#: Bytes read from the file and handed to the socket at a time.
CHUNK = 1 << 20
CONNECT_TIMEOUT = 30.0
#: A send making no progress this long means the proxy is gone (it waits at most 10 s for the upload pod).
SEND_TIMEOUT = 120.0
#: The answer of a synchronous upload comes after processing (a qcow2 conversion): as long as the proxy allows.
ANSWER_TIMEOUT = 24 * 3600.0
#: After a failed send, how long to look for an answer the server may have given before it stopped reading.
EARLY_ANSWER_TIMEOUT = 5.0
#: Answers are short texts.
MAX_ANSWER = 1 << 20


class Progress(Protocol):
    def update(self, n: int) -> None: ...


class ConnectionProblem(Exception):
    """The request did not get an answer: refused, reset, timed out, TLS failure. Worth a retry."""


class CertificateProblem(ConnectionProblem):
    """The proxy's certificate did not verify: trying again cannot help."""


class Cancelled(Exception):
    """The caller asked the transfer to stop."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


def endpoint(base: str, path: str) -> str:
    """ConstructUploadProxyPath: `path` appended to the URL's path, unless the URL already names it."""
    if path in base:
        return base
    parts = urllib.parse.urlsplit(base)
    joined = parts.path.rstrip("/") + path
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, joined, parts.query, parts.fragment))


def _connection(url: str, context: ssl.SSLContext) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectionProblem(f"unsupported upload proxy URL {url!r}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT)
    return conn, target


def _answer(conn: http.client.HTTPConnection, timeout: float) -> Answer:
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
    response = conn.getresponse()
    body = response.read(MAX_ANSWER)
    return Answer(response.status, body.decode(errors="replace").strip())


def async_available(base: str, token: str, context: ssl.SSLContext) -> bool:
    """HEAD on the async endpoint answers 200 when the server finishes uploads in the background."""
    conn, target = _connection(endpoint(base, u.UPLOAD_PATH_ASYNC), context)
    try:
        conn.request("HEAD", target, headers={"Authorization": f"Bearer {token}"})
        return _answer(conn, SEND_TIMEOUT).status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def send_file(url: str, token: str, path: str, context: ssl.SSLContext, progress: Progress,
              cancel: threading.Event | None = None) -> Answer:
    """POST the whole file as the body (octet-stream, with its length); the server's answer, or
    ConnectionProblem when there is none. A server answering before the body is all sent (a refusal) is heard."""
    conn, target = _connection(url, context)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        try:
            conn.putrequest("POST", target, skip_accept_encoding=True)
            conn.putheader("Authorization", f"Bearer {token}")
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
        except ssl.SSLCertVerificationError as err:
            raise CertificateProblem(f"the upload proxy's certificate is not trusted: {err.verify_message}") from err
        except (OSError, http.client.HTTPException) as err:
            raise ConnectionProblem(_describe(err)) from err
        sock = conn.sock
        assert sock is not None
        sock.settimeout(SEND_TIMEOUT)
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        sent = 0
        try:
            while sent < size:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                n = os.readv(fd, [buffer])
                if n == 0:
                    raise ConnectionProblem(f"{path} shrank while being uploaded ({sent} of {size} bytes)")
                sock.sendall(view[:n])
                sent += n
                progress.update(n)
        except (OSError, ssl.SSLError) as err:
            # The server may have answered and stopped reading (a refusal): that answer is the result.
            try:
                return _answer(conn, EARLY_ANSWER_TIMEOUT)
            except (OSError, http.client.HTTPException):
                raise ConnectionProblem(f"connection lost after {sent} of {size} bytes: {_describe(err)}") from err
        try:
            return _answer(conn, ANSWER_TIMEOUT)
        except (OSError, http.client.HTTPException) as err:
            raise ConnectionProblem(_describe(err)) from err
    finally:
        os.close(fd)
        conn.close()


def _describe(err: BaseException) -> str:
    if isinstance(err, socket.timeout):
        return "timed out"
    if isinstance(err, http.client.RemoteDisconnected):
        return "the server closed the connection without an answer"
    return str(err) or type(err).__name__
