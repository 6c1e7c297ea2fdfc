"""The upload proxy in front of a real embedded API server: token checks, waiting for the PVC's upload pod (by
watching it), the 503 reasons, the archive path rewrite and CORS. Forwarding is covered by the functional tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pycdi.cdiapi.uploadtoken import Payload, TokenIssuer, TokenValidator, ensure_signing_keys
from pycdi.kube.client import KubeClient
from pycdi.kube.resources import PERSISTENT_VOLUME_CLAIMS
from pycdi.uploadproxy.app import NotReady, UploadProxy, resolve_path, upload_possible
from tests.unit.controllers.conftest import admin_token, api, client, kubeconfig

__all__ = ["admin_token", "api", "client", "kubeconfig"]
ANN = "cdi.kubevirt.io/storage."


class Proxy:
    def __init__(self, proxy: UploadProxy, issuer: TokenIssuer, base: str, session: aiohttp.ClientSession) -> None:
        self.proxy, self.issuer, self.base, self.session = proxy, issuer, base, session

    async def post(self, auth: str | None, path: str = "/v1beta1/upload", **headers: str) -> tuple[int, str]:
        if auth is not None:
            headers["Authorization"] = auth
        async with self.session.post(self.base + path, data=b"data", headers=headers) as resp:
            return resp.status, await resp.text()


@pytest.fixture
async def proxy(client: KubeClient, tmp_path: Path) -> AsyncIterator[Proxy]:
    keys = ensure_signing_keys(tmp_path / "keys")
    up = UploadProxy(client, TokenValidator(keys.public_key_pem).check, wait_ready=3.0)
    port = await up.start("127.0.0.1", 0, None)
    try:
        async with aiohttp.ClientSession() as session:
            yield Proxy(up, TokenIssuer(keys.private_key_pem), f"http://127.0.0.1:{port}", session)
    finally:
        await up.stop()


async def make_pvc(client: KubeClient, name: str, annotations: dict[str, str]) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    return await client.create(PERSISTENT_VOLUME_CLAIMS, body, "default")


async def test_token_checks(proxy: Proxy, tmp_path: Path) -> None:
    assert (await proxy.post(None))[0] == 401
    assert (await proxy.post("Basic dXNlcjpwYXNz"))[0] == 400
    assert (await proxy.post("Bearer"))[0] == 400
    assert (await proxy.post("Bearer a.b.c"))[0] == 401
    stranger = TokenIssuer(ensure_signing_keys(tmp_path / "other").private_key_pem)
    assert (await proxy.post(f"Bearer {stranger.upload_token('d', 'default')}"))[0] == 401
    expired = proxy.issuer.issue(Payload("Upload", "d", "default"), now=time.time() - 400)
    assert (await proxy.post(f"Bearer {expired}"))[0] == 401
    assert (await proxy.post(f"Bearer {proxy.issuer.issue(Payload('Clone', 'd', 'default'))}"))[0] == 400
    secret = Payload("Upload", "d", "default", {"group": "", "version": "v1", "resource": "secrets"})
    assert (await proxy.post(f"Bearer {proxy.issuer.issue(secret)}"))[0] == 401
    assert (await proxy.post(f"Bearer {proxy.issuer.issue(Payload('Upload', '', 'default'))}"))[0] == 401


async def test_pvc_states_answer_503_with_the_reason(proxy: Proxy, client: KubeClient) -> None:
    def bearer(pvc: str) -> str:
        return f"Bearer {proxy.issuer.upload_token(pvc, 'default')}"

    assert await proxy.post(bearer("absent")) == (503, "rejecting Upload Request for PVC absent that doesn't exist")
    await make_pvc(client, "plain", {})
    assert await proxy.post(bearer("plain")) == (503, "PVC plain is not an upload target")
    await make_pvc(client, "done", {f"{ANN}upload.target": "", f"{ANN}pod.phase": "Succeeded"})
    assert await proxy.post(bearer("done")) == \
        (503, "rejecting Upload Request for PVC done that already finished uploading")
    await make_pvc(client, "waiting", {f"{ANN}upload.target": ""})
    status, text = await proxy.post(bearer("waiting"))
    assert status == 503 and text == "PVC waiting is not ready for upload: its upload pod did not become ready in 3s"


async def test_the_proxy_waits_for_the_pod_to_become_ready(proxy: Proxy, client: KubeClient) -> None:
    """Ready while the request waits: the watch sees it and the request goes on (to the pod, here missing)."""
    await make_pvc(client, "soon", {f"{ANN}upload.target": ""})
    request = asyncio.ensure_future(proxy.post(f"Bearer {proxy.issuer.upload_token('soon', 'default')}"))
    await asyncio.sleep(0.5)  # the request is waiting on the PVC by now (it waits up to 3 s)
    assert not request.done()
    await client.patch(PERSISTENT_VOLUME_CLAIMS, "soon", {"metadata": {"annotations": {f"{ANN}pod.ready": "true"}}},
                       "default")
    assert await asyncio.wait_for(request, 10) == (503, "the upload pod of PVC soon is gone")


def test_archive_content_is_sent_to_the_archive_endpoint() -> None:
    def claim(content: str | None) -> dict[str, Any]:
        ann = {} if content is None else {f"{ANN}contentType": content}
        return {"metadata": {"name": "d", "annotations": ann}}

    assert resolve_path(claim(None), "/v1beta1/upload-async") == "/v1beta1/upload-async"
    assert resolve_path(claim("kubevirt"), "/v1alpha1/upload-form") == "/v1alpha1/upload-form"
    assert resolve_path(claim("archive"), "/v1beta1/upload-form-async") == "/v1beta1/upload-archive"
    assert resolve_path(claim("archive"), "/v1alpha1/upload") == "/v1alpha1/upload-archive"
    with pytest.raises(NotReady, match="upload content-type weird is invalid"):
        resolve_path(claim("weird"), "/v1beta1/upload")
    assert not upload_possible({"metadata": {"annotations": {f"{ANN}upload.target": ""}}}, "d")
    assert upload_possible({"metadata": {"annotations": {f"{ANN}upload.target": "", f"{ANN}pod.ready": "true"}}}, "d")


async def test_cors_as_rs_cors_allow_all(proxy: Proxy) -> None:
    headers = {"Origin": "https://ui.example.com", "Access-Control-Request-Method": "post",
               "Access-Control-Request-Headers": "authorization, content-type"}
    async with proxy.session.options(proxy.base + "/v1beta1/upload-async", headers=headers) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert resp.headers["Access-Control-Allow-Methods"] == "POST"
        assert resp.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
        assert "Access-Control-Request-Method" in resp.headers["Vary"]
    async with proxy.session.get(proxy.base + "/healthz", headers={"Origin": "https://ui.example.com"}) as resp:
        assert (resp.status, await resp.text()) == (200, "OK")
        assert resp.headers["Access-Control-Allow-Origin"] == "*" and resp.headers["Vary"] == "Origin"
    status, _ = await proxy.post(None, Origin="https://ui.example.com")
    assert status == 401
    async with proxy.session.get(proxy.base + "/healthz") as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_stop_ends_a_request_waiting_for_its_pvc(proxy: Proxy, client: KubeClient) -> None:
    """The look-up the request's thread waits for on the event loop is cancelled: the connection closes."""
    await make_pvc(client, "never", {f"{ANN}upload.target": ""})
    request = asyncio.ensure_future(proxy.post(f"Bearer {proxy.issuer.upload_token('never', 'default')}"))
    await asyncio.sleep(0.5)  # the request is waiting on the PVC by now (it waits up to 3 s)
    start = time.monotonic()
    await proxy.proxy.stop()
    assert time.monotonic() - start < 2
    with pytest.raises(aiohttp.ClientError):  # no answer: the proxy is gone
        await request
    assert not proxy.proxy.ready()


async def exchange(proxy: Proxy, request: bytes) -> bytes:
    """One raw request; the whole answer up to the connection's end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", int(proxy.base.rsplit(":", 1)[1]))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_malformed_requests_are_refused(proxy: Proxy) -> None:
    smuggled = b"POST /v1beta1/upload HTTP/1.1\r\nHost: p\r\nX-A: a\nContent-Length: 5\r\n\r\n"
    both = b"POST /v1beta1/upload HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    for request in (smuggled, both, b"GET / HTTP/2.0\r\n\r\n", b"NOT A REQUEST\r\n\r\n"):
        answer = await exchange(proxy, request)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"\r\nConnection: close\r\n" in answer
    answer = await exchange(proxy, b"GET /v1beta1/nothing-here HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404 Not Found\r\n") and answer.endswith(b"\r\n\r\n404: Not Found")
