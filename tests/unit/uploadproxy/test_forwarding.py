"""The upload proxy forwarding to an upload server over mTLS, end to end in this process: a real embedded API
server holds the PVC, the pod and the TLS material; the server is the standard library's HTTP server with the
certificates the upload controller would issue; clients speak TLS to the proxy from threads (the proxy calls
back into this test's event loop for its look-ups)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http.client
import http.server
import os
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pycdi import unixsock
from pycdi.api import upload as u
from pycdi.cdiapi.uploadtoken import TokenIssuer, TokenValidator, ensure_signing_keys
from pycdi.controllers.uploadpod.certs import KeyPair, issue, new_ca
from pycdi.kube.client import KubeClient
from pycdi.kube.resources import CONFIG_MAPS, PERSISTENT_VOLUME_CLAIMS, PODS, SECRETS
from pycdi.uploadproxy.app import UploadProxy
from tests.unit.controllers.conftest import admin_token, api, client, kubeconfig

__all__ = ["admin_token", "api", "client", "kubeconfig"]
ANN = "cdi.kubevirt.io/storage."
NS, PVC, POD = "default", "disk", "cdi-upload-disk"
MiB = 1 << 20


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    sha256: str
    size: int


@dataclass
class UploadServer:
    """What the upload server saw; `answer` says how it answers: "ok", or 400 before reading the body, then
    closing ("refuse-and-close") or reading on until the proxy closes ("refuse-and-drain")."""

    port: int
    answer: str = "ok"
    received: list[Received] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)


def _write(path: Path, pair: KeyPair) -> tuple[str, str]:
    cert, key = path.with_suffix(".crt"), path.with_suffix(".key")
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    return str(cert), str(key)


def _read_body(handler: http.server.BaseHTTPRequestHandler) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        while (chunk := int(handler.rfile.readline().split(b";")[0], 16)) > 0:
            data = handler.rfile.read(chunk)
            digest.update(data)
            size += len(data)
            handler.rfile.readline()
        handler.rfile.readline()
    else:
        left = int(handler.headers.get("Content-Length") or 0)
        while left:
            data = handler.rfile.read(min(left, MiB))
            if not data:
                raise ConnectionError("short body")
            digest.update(data)
            size += len(data)
            left -= len(data)
    return digest.hexdigest(), size


def serve_uploads(state: UploadServer, context: ssl.SSLContext, unix_path: str | None = None
                  ) -> socketserver.BaseServer:
    """The upload server's stand-in: mTLS on the port; or plain HTTP on a Unix socket (an embedded cluster's)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            if state.answer.startswith("refuse"):
                self.send_response(400)
                body = b"Saving stream failed: too large"
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if state.answer == "refuse-and-drain":  # as aiohttp's lingering close: read on, then close
                    while self.rfile.read1(MiB):
                        pass
                self.close_connection = True
                return
            try:
                sha, size = _read_body(self)
            except (OSError, ValueError):
                state.ended.set()
                raise
            state.received.append(Received(self.command, self.path, dict(self.headers.items()), sha, size))
            self.send_response(200)
            self.send_header("X-Upload-Server", "yes")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server: socketserver.BaseServer
    if unix_path is not None:
        with unixsock.address(unix_path) as name:
            local = socketserver.ThreadingUnixStreamServer(name, Handler)
        local.daemon_threads = True
        server = local
    else:
        tcp = http.server.ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
        tcp.daemon_threads = True
        tcp.socket = context.wrap_socket(tcp.socket, server_side=True)
        server = tcp
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Setup:
    proxy: UploadProxy
    port: int
    client_context: ssl.SSLContext
    server_context: ssl.SSLContext
    server: UploadServer
    issuer: TokenIssuer

    def token(self) -> str:
        return self.issuer.upload_token(PVC, NS)

    @contextlib.contextmanager
    def upload_server(self, answer: str = "ok", unix_path: str | None = None) -> Iterator[UploadServer]:
        self.server.answer = answer
        server = serve_uploads(self.server, self.server_context, unix_path)
        try:
            yield self.server
        finally:
            server.shutdown()
            server.server_close()

    def connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.client_context, timeout=30)

    def tls_socket(self) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        return self.client_context.wrap_socket(raw, server_hostname="127.0.0.1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def setup(client: KubeClient, tmp_path: Path) -> AsyncIterator[Setup]:
    # The TLS material as the upload controller keeps it in CDI's namespace (which the cluster makes).
    server_ca, client_ca = new_ca("upload-server-signer"), new_ca("upload-client-signer")
    proxy_client = issue(client_ca, u.UPLOAD_CLIENT_NAME, client=True)
    await client.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                                  "metadata": {"name": u.CLIENT_CERT_SECRET, "namespace": "cdi"},
                                  "data": {"tls.crt": base64.b64encode(proxy_client.cert_pem).decode(),
                                           "tls.key": base64.b64encode(proxy_client.key_pem).decode()}}, "cdi")
    await client.create(CONFIG_MAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": u.SERVER_SIGNER_BUNDLE, "namespace": "cdi"},
                                      "data": {u.BUNDLE_KEY: server_ca.cert_pem.decode()}}, "cdi")
    # A ready upload target and its pod, at this machine's address.
    await client.create(PERSISTENT_VOLUME_CLAIMS, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": PVC, "namespace": NS, "annotations": {f"{ANN}upload.target": "",
                                                                    f"{ANN}pod.ready": "true"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}, NS)
    await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": NS},
                               "spec": {"containers": [{"name": "server", "image": "uploadserver"}]}}, NS)
    await client.patch_status(PODS, POD, {"status": {"podIP": "127.0.0.1"}}, NS)
    # The server's certificate names its Service, and it takes the proxy's client certificate only.
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*_write(tmp_path / "server", issue(server_ca, "server", hosts=[
        u.server_hostname(POD, NS)])))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cadata=client_ca.cert_pem.decode())
    # The proxy's own serving certificate, which the clients here trust.
    front_ca = new_ca("front")
    front_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    front_ctx.load_cert_chain(*_write(tmp_path / "front", issue(front_ca, "proxy", hosts=["127.0.0.1"])))
    client_ctx = ssl.create_default_context(cadata=front_ca.cert_pem.decode())

    keys = ensure_signing_keys(tmp_path / "keys")
    server_port = free_port()
    proxy = UploadProxy(client, TokenValidator(keys.public_key_pem).check, wait_ready=2.0, server_port=server_port)
    port = await proxy.start("127.0.0.1", 0, front_ctx)
    try:
        yield Setup(proxy, port, client_ctx, server_ctx, UploadServer(server_port), TokenIssuer(keys.private_key_pem))
    finally:
        await proxy.stop()


def post(setup: Setup, body: bytes, path: str = "/v1beta1/upload", **headers: str) -> tuple[int, bytes, Any]:
    conn = setup.connection()
    try:
        conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {setup.token()}", **headers})
        response = conn.getresponse()
        return response.status, response.read(), response.headers
    finally:
        conn.close()


def head_then_healthz(setup: Setup) -> tuple[int, int, bytes]:
    """Two requests on one connection (keep-alive): the async endpoint check `image-upload` makes, then /healthz."""
    conn = setup.connection()
    try:
        conn.request("HEAD", "/v1beta1/upload-async", headers={"Authorization": f"Bearer {setup.token()}"})
        head = conn.getresponse()
        head.read()
        conn.request("GET", "/healthz")
        healthz = conn.getresponse()
        return head.status, healthz.status, healthz.read()
    finally:
        conn.close()


async def test_the_body_streams_to_the_server_and_its_answer_comes_back(setup: Setup) -> None:
    data = os.urandom(3 * MiB + 5)
    with setup.upload_server() as server:
        status, body, headers = await asyncio.to_thread(
            post, setup, data, "/v1beta1/upload-async", **{"Content-Type": "application/octet-stream",
                                                           "X-Cdi-Content-Type": "kubevirt"})
        assert await asyncio.to_thread(head_then_healthz, setup) == (200, 200, b"OK")
    assert (status, body, headers["X-Upload-Server"]) == (200, b"", "yes")
    [seen] = server.received
    assert (seen.method, seen.path, seen.size) == ("POST", "/v1beta1/upload-async", len(data))
    assert seen.sha256 == hashlib.sha256(data).hexdigest()
    assert seen.headers["Content-Type"] == "application/octet-stream"
    assert seen.headers["X-Cdi-Content-Type"] == "kubevirt"
    assert "Authorization" not in seen.headers  # the token stays with the proxy
    assert seen.headers["Host"] == f"127.0.0.1:{server.port}"


async def test_on_this_machine_the_body_goes_through_the_servers_local_socket(setup: Setup, tmp_path: Path) -> None:
    """An embedded cluster's proxy reaches the pod's local socket (plain HTTP; no server listens on TCP here).
    The socket's path is longer than a socket address holds."""
    private = tmp_path / ("p" * 110)
    private.mkdir(mode=0o700)
    asked: list[tuple[str, str]] = []

    def local_path(uid: str, container_path: str) -> Path:
        asked.append((uid, container_path))
        return private / "uploadserver.sock"

    setup.proxy.local_path = local_path
    data = os.urandom(2 * MiB + 3)
    with setup.upload_server(unix_path=str(private / "uploadserver.sock")) as server:
        status, body, headers = await asyncio.to_thread(post, setup, data)
        interim, answer = await asyncio.to_thread(send_expecting_continue, setup, [data[:1000], data[1000:]])
    assert (status, headers["X-Upload-Server"]) == (200, "yes")
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n" and answer.startswith(b"HTTP/1.1 200 ")
    assert [(r.size, r.sha256) for r in server.received] == [(len(data), hashlib.sha256(data).hexdigest())] * 2
    assert asked[0][1] == u.LOCAL_SOCKET and asked[0][0]  # the pod's UID


def send_expecting_continue(setup: Setup, chunks: list[bytes]) -> tuple[bytes, bytes]:
    """A client that waits for 100 Continue before a chunked body; (what came before the body, the answer)."""
    with setup.tls_socket() as sock:
        sock.sendall((f"POST /v1beta1/upload HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer {setup.token()}\r\n"
                      "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        interim = sock.recv(1024)
        for chunk in chunks:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        return interim, answer


async def test_expect_continue_and_a_chunked_body(setup: Setup) -> None:
    chunks = [os.urandom(n) for n in (1, 70000, 3 * MiB, 17)]
    with setup.upload_server() as server:
        interim, answer = await asyncio.to_thread(send_expecting_continue, setup, chunks)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    [seen] = server.received
    assert seen.headers["Transfer-Encoding"] == "chunked" and "Expect" not in seen.headers
    assert seen.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()


def send_big_body(setup: Setup, size: int) -> bytes:
    """Send a body the server refuses early: the answer arrives while the body is still going out."""
    with setup.tls_socket() as sock:
        sock.sendall((f"POST /v1beta1/upload HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer {setup.token()}\r\n"
                      f"Content-Length: {size}\r\n\r\n").encode())
        block = bytes(MiB)
        try:
            for _ in range(size // MiB):
                sock.sendall(block)
        except OSError:
            pass  # the proxy stopped reading after relaying the refusal
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.parametrize("answer", ["refuse-and-close", "refuse-and-drain"])
async def test_an_early_refusal_is_relayed(setup: Setup, answer: str) -> None:
    with setup.upload_server(answer):
        reply = await asyncio.wait_for(asyncio.to_thread(send_big_body, setup, 256 * MiB), 60)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close" in head
    assert body == b"Saving stream failed: too large"


async def test_a_server_still_starting_is_tried_again_then_502(setup: Setup) -> None:
    data = os.urandom(1000)
    start = time.monotonic()
    status, body, _ = await asyncio.to_thread(post, setup, data)
    assert status == 502 and body.startswith(b"error in upload-proxy: cannot connect to 127.0.0.1:")
    assert time.monotonic() - start >= setup.proxy.wait_ready  # retried for as long as upstream waits

    request = asyncio.ensure_future(asyncio.to_thread(post, setup, data))
    await asyncio.sleep(0.5)  # the proxy is retrying by now: the server starts late
    with setup.upload_server() as server:
        assert (await request)[0] == 200
    assert [seen.size for seen in server.received] == [len(data)]


async def test_stop_ends_an_upload_in_progress(setup: Setup) -> None:
    with setup.upload_server() as server:
        sock = await asyncio.to_thread(setup.tls_socket)
        try:
            sock.sendall((f"POST /v1beta1/upload HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer {setup.token()}"
                          f"\r\nContent-Length: {64 * MiB}\r\n\r\n").encode() + bytes(MiB))
            await asyncio.sleep(0.3)  # the relay is waiting for more of the body
            start = time.monotonic()
            await setup.proxy.stop()
            assert time.monotonic() - start < 2
            assert await asyncio.to_thread(server.ended.wait, 10)  # the server saw the upload end short
            # Stopping cuts the client off: at most the relay's 502 for the upload it lost gets out first.
            answer = await asyncio.to_thread(_read_to_end, sock)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 502 "), answer
        finally:
            sock.close()


def _read_to_end(sock: ssl.SSLSocket) -> bytes:
    """What arrives before the connection ends (a reset, when unread body bytes were left behind, ends it too)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    return data
