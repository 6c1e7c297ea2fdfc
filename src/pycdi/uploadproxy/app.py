"""The upload proxy (upstream's uploadproxy.go): checks the upload token, waits for the PVC's upload pod to be
ready, and streams the request to that pod's upload server over mTLS without buffering the body."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, cast

import aiohttp
from aiohttp import web

from ..api import constants as c
from ..api import upload as u
from ..kube.client import KubeClient
from ..kube.errors import APIStatusError, NotFound
from ..kube.resources import PERSISTENT_VOLUME_CLAIMS, PODS
from .backend import BackendUnavailable, ClientMaterial, client_context, load_material, server_url

log = logging.getLogger(__name__)

#: Upstream waits this long for the PVC's upload pod to be ready (`waitReadyTime`).
WAIT_READY = 10.0
#: A request may stream for a day (`proxyRequestTimeout`).
PROXY_TIMEOUT = 24 * 3600.0
CONNECT_TIMEOUT = 10.0
#: Request body buffer: large reads mean fewer pauses of the client's socket and fewer writes upstream.
READ_BUFFER = 1 << 20
#: Between connection attempts to a server that is still starting (its pod already reports ready).
CONNECT_RETRY = 0.2
_AUTH = re.compile(r"(?i)^Bearer\s+([A-Za-z0-9\-._~+/]+=*)$")
#: Hop-by-hop headers (RFC 9110 7.6.1) are not forwarded; nor is the token, which the server has no use for.
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                            "trailer", "transfer-encoding", "upgrade", "host", "authorization"})
_CORS_METHODS = frozenset({"HEAD", "GET", "POST", "PUT", "PATCH", "DELETE"})


class Claims(Protocol):
    """What the proxy needs from a valid token."""

    @property
    def operation(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def is_pvc(self) -> bool: ...


#: The token's claims, or None when its signature, issuer or times are not valid (forged, expired, malformed).
TokenCheck = Callable[[str], Claims | None]


class NotReady(Exception):
    """The PVC cannot take an upload now; the message is the answer's body (503)."""


@web.middleware
async def cors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
               ) -> web.StreamResponse:
    """rs/cors `AllowAll()`: any origin, the usual methods, any requested header, no credentials."""
    origin = request.headers.get("Origin")
    wanted = request.headers.get("Access-Control-Request-Method", "")
    if request.method == "OPTIONS" and wanted:
        headers = {"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
        if origin and wanted.upper() in _CORS_METHODS:
            headers["Access-Control-Allow-Origin"] = "*"
            headers["Access-Control-Allow-Methods"] = wanted.upper()
            requested = request.headers.get("Access-Control-Request-Headers", "")
            if requested:
                headers["Access-Control-Allow-Headers"] = requested
        return web.Response(status=204, headers=headers)
    response = await handler(request)
    if origin is not None:
        response.headers.add("Vary", "Origin")
        if origin and request.method in _CORS_METHODS:
            response.headers["Access-Control-Allow-Origin"] = "*"
    return response


class UploadProxy:
    def __init__(self, client: KubeClient, check_token: TokenCheck, *, cdi_namespace: str = u.DEFAULT_CDI_NAMESPACE,
                 wait_ready: float = WAIT_READY) -> None:
        self.client = client
        self.check_token = check_token
        self.cdi_namespace = cdi_namespace
        self.wait_ready = wait_ready
        self._material: ClientMaterial | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- serving ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[cors], client_max_size=0)
        app.router.add_route("*", u.HEALTHZ_PATH, self._healthz)
        for path in u.PROXY_PATHS:
            app.router.add_route("*", path, self._upload)
        return app

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None, shutdown_timeout=5.0,
                                     read_bufsize=READ_BUFFER)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context, backlog=128)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        return self.port

    def ready(self) -> bool:
        return self._runner is not None and self.port != 0

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    # ---- one upload -------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        if not header:
            # Upstream answers 400; a missing credential is 401 here, as for any API (issue 5).
            return web.Response(status=401, text="missing upload token", headers={"WWW-Authenticate": "Bearer"})
        match = _AUTH.match(header)
        if match is None:
            return web.Response(status=400, text="malformed Authorization header: want 'Bearer <token>'")
        claims = self.check_token(match.group(1))
        if claims is None:
            return web.Response(status=401, text="invalid or expired upload token",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if claims.operation != u.OPERATION_UPLOAD:
            log.error("Bad token: operation %r", claims.operation)
            return web.Response(status=400, text=f"the token is for {claims.operation or 'no'} operation, not "
                                                 f"{u.OPERATION_UPLOAD}")
        if not claims.is_pvc or not claims.name or not claims.namespace:
            return web.Response(status=401, text="the upload token names no PVC",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        log.info("Received valid token: pvc: %s, namespace: %s", claims.name, claims.namespace)
        try:
            pvc = await self._upload_ready(claims.name, claims.namespace)
            path = resolve_path(pvc, request.path)
            pod_ip, hostname = await self._server_of(pvc)
        except NotReady as err:
            log.warning("%s", err)
            return _text(503, str(err))
        return await self._forward(request, server_url(pod_ip, path), hostname)

    async def _upload_ready(self, name: str, namespace: str) -> dict[str, Any]:
        """Wait (watching the PVC) up to `wait_ready` seconds for `storage.pod.ready`; refuse what cannot be."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_ready
        try:
            pvc = await self.client.get(PERSISTENT_VOLUME_CLAIMS, name, namespace)
        except NotFound:
            raise NotReady(f"rejecting Upload Request for PVC {name} that doesn't exist") from None
        if upload_possible(pvc, name):
            return pvc
        version = str(pvc["metadata"].get("resourceVersion") or "")
        while (left := deadline - loop.time()) > 0:
            try:
                events = cast(AsyncGenerator[dict[str, Any], None], self.client.watch(
                    PERSISTENT_VOLUME_CLAIMS, namespace, resource_version=version,
                    field_selector=f"metadata.name={name}", timeout_seconds=max(1, int(left) + 1)))
                async with asyncio.timeout(left), contextlib.aclosing(events):
                    async for event in events:
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "DELETED":
                            raise NotReady(f"rejecting Upload Request for PVC {name} that doesn't exist")
                        if kind in ("ADDED", "MODIFIED"):
                            version = str(obj["metadata"].get("resourceVersion") or version)
                            if upload_possible(obj, name):
                                return obj
                        elif kind == "ERROR":
                            break  # too old a version: read it again
                pvc = await self.client.get(PERSISTENT_VOLUME_CLAIMS, name, namespace)
                version = str(pvc["metadata"].get("resourceVersion") or "")
                if upload_possible(pvc, name):
                    return pvc
            except TimeoutError:
                break
            except NotFound:
                raise NotReady(f"rejecting Upload Request for PVC {name} that doesn't exist") from None
        raise NotReady(f"PVC {name} is not ready for upload: its upload pod did not become ready in "
                       f"{self.wait_ready:g}s")

    async def _server_of(self, pvc: dict[str, Any]) -> tuple[str, str]:
        """The upload pod's address, and the name its certificate carries."""
        meta = pvc["metadata"]
        pod_name = (meta.get("annotations") or {}).get(u.ANN_UPLOAD_POD) or \
            f"{u.UPLOAD_POD_PREFIX}-{meta['name']}"
        try:
            pod = await self.client.get(PODS, pod_name, meta["namespace"])
        except NotFound:
            raise NotReady(f"the upload pod of PVC {meta['name']} is gone") from None
        pod_ip = (pod.get("status") or {}).get("podIP")
        if not pod_ip:
            raise NotReady(f"the upload pod of PVC {meta['name']} has no address yet")
        return str(pod_ip), u.server_hostname(pod_name, meta["namespace"])

    # ---- forwarding -------------------------------------------------------------------------------

    async def _backend(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            material = await load_material(self.client, self.cdi_namespace)
            connector = aiohttp.TCPConnector(ssl=client_context(material), limit=0, force_close=True)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  skip_auto_headers=("User-Agent", "Content-Type"))
            self._material = material
        return self._session

    async def _forward(self, request: web.Request, url: str, hostname: str) -> web.StreamResponse:
        try:
            session = await self._backend()
        except (BackendUnavailable, APIStatusError) as err:
            log.error("cannot reach upload servers: %s", err)
            return _text(503, str(err))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        body = _stream(request) if request.body_exists else None
        timeout = aiohttp.ClientTimeout(total=PROXY_TIMEOUT, sock_connect=CONNECT_TIMEOUT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_ready
        while True:
            try:
                async with session.request(request.method, url, data=body, headers=headers, timeout=timeout,
                                           server_hostname=hostname, allow_redirects=False) as upstream:
                    # The server's answers are short texts: read whole (bounded), then relay.
                    text = await upstream.content.read(1 << 20)
                    relayed = {k: v for k, v in upstream.headers.items()
                               if k.lower() not in _NOT_FORWARDED and k.lower() != "content-length"}
                    return web.Response(status=upstream.status, body=text, headers=relayed)
            except aiohttp.ClientConnectorCertificateError as err:
                await self._reset()  # the CA may have been re-made: read it again next time
                return self._proxy_error(err)
            except aiohttp.ClientConnectorError as err:
                # Nothing was sent yet: a server still starting is tried again for a while.
                if loop.time() < deadline:
                    await asyncio.sleep(CONNECT_RETRY)
                    continue
                return self._proxy_error(err)
            except (aiohttp.ClientError, TimeoutError) as err:
                return self._proxy_error(err)

    def _proxy_error(self, err: BaseException) -> web.Response:
        log.error("Error in reverse proxy: %s", err)
        return _text(502, f"error in upload-proxy: {err}")

    async def _reset(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None


def _text(status: int, text: str) -> web.Response:
    """A plain-text answer browsers never sniff as HTML (upstream HTML-escapes the text instead)."""
    return web.Response(status=status, text=text, headers={"X-Content-Type-Options": "nosniff"})


async def _stream(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_any():
        yield chunk


def upload_possible(pvc: dict[str, Any], name: str) -> bool:
    """True when ready; raises NotReady for a PVC that can never take this upload."""
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    if c.ANN_UPLOAD_REQUEST not in ann:
        raise NotReady(f"PVC {name} is not an upload target")
    if ann.get(c.ANN_POD_PHASE) == "Succeeded":
        raise NotReady(f"rejecting Upload Request for PVC {name} that already finished uploading")
    return str(ann.get(c.ANN_POD_READY, "")).lower() == "true"


def resolve_path(pvc: dict[str, Any], path: str) -> str:
    """resolveUploadPath: archive content goes to the server's archive endpoint."""
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    content = ann.get(c.ANN_CONTENT_TYPE, "")
    if content in (c.ContentType.KUBEVIRT.value, ""):
        return path
    if content == c.ContentType.ARCHIVE.value:
        return u.UPLOAD_ARCHIVE_ALPHA_PATH if "alpha" in path else u.UPLOAD_ARCHIVE_PATH
    raise NotReady(f"rejecting upload request for PVC {pvc['metadata']['name']} - upload content-type {content} "
                   "is invalid")
