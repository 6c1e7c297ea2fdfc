"""The upload proxy (upstream's uploadproxy.go): checks the upload token, waits for the PVC's upload pod to be
ready, and streams the request to that pod's upload server over mTLS without buffering the body."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import ssl
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar, cast

from ..api import constants as c
from ..api import upload as u
from ..http1 import Headers
from ..kube.client import KubeClient
from ..kube.errors import APIStatusError, NotFound
from ..kube.resources import PERSISTENT_VOLUME_CLAIMS, PODS
from .backend import BackendUnavailable, client_context, load_material
from .front import Connections, Front
from .http import Body, Request, Response
from .relay import CertificateError, ClientGone, ProxyError, Target, forward

log = logging.getLogger(__name__)

#: Upstream waits this long for the PVC's upload pod to be ready (`waitReadyTime`).
WAIT_READY: Final = 10.0
_AUTH = re.compile(r"(?i)^Bearer\s+([A-Za-z0-9\-._~+/]+=*)$")
_CORS_METHODS = frozenset({"HEAD", "GET", "POST", "PUT", "PATCH", "DELETE"})
_TEXT: Final = ("Content-Type", "text/plain; charset=utf-8")
T = TypeVar("T")


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
#: (pod UID, container path) -> where that path is on this machine, or None: given by an embedded cluster.
LocalPath = Callable[[str, str], Path | None]


class NotReady(Exception):
    """The PVC cannot take an upload now; the message is the answer's body (503)."""


def cors(request: Request, respond: Callable[[], Response | None]) -> Response:
    """rs/cors `AllowAll()`: any origin, the usual methods, any requested header, no credentials. `respond`
    gives None for a path the proxy does not serve: that 404 goes out as aiohttp's did, without CORS headers."""
    origin = request.header("Origin")
    wanted = request.header("Access-Control-Request-Method") or ""
    if request.method == "OPTIONS" and wanted:
        headers: Headers = [("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")]
        if origin and wanted.upper() in _CORS_METHODS:
            headers += [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", wanted.upper())]
            requested = request.header("Access-Control-Request-Headers") or ""
            if requested:
                headers.append(("Access-Control-Allow-Headers", requested))
        return Response(204, headers)
    response = respond()
    if response is None:
        return text(404, "404: Not Found")
    if origin is not None:
        response.headers.append(("Vary", "Origin"))
        if origin and request.method in _CORS_METHODS:
            response.headers = [(k, v) for k, v in response.headers if k.lower() != "access-control-allow-origin"]
            response.headers.append(("Access-Control-Allow-Origin", "*"))
    return response


def text(status: int, body: str, *headers: tuple[str, str]) -> Response:
    return Response(status, [_TEXT, *headers], body.encode())


class UploadProxy:
    """Serves on threads of its own (see front.py); the token check runs there, the PVC and pod look-ups run on
    the event loop `start` was awaited in, whose KubeClient they use."""

    def __init__(self, client: KubeClient, check_token: TokenCheck, *, cdi_namespace: str = u.DEFAULT_CDI_NAMESPACE,
                 wait_ready: float = WAIT_READY, server_port: int = u.UPLOAD_SERVER_PORT,
                 local_path: LocalPath | None = None) -> None:
        self.client = client
        #: Embedded clusters: where a pod's container path is on this machine (the upload servers' local sockets).
        self.local_path = local_path
        self.check_token = check_token
        self.cdi_namespace = cdi_namespace
        self.wait_ready = wait_ready
        self.server_port = server_port  # the upload servers' port on their pods' addresses
        self._context: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._front: Front | None = None
        self._connections = Connections()
        self._stopped = threading.Event()
        self._calls: set[concurrent.futures.Future[Any]] = set()
        self._calls_lock = threading.Lock()
        self.port = 0

    # ---- serving ----------------------------------------------------------------------------------

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        self._loop = asyncio.get_running_loop()
        self._connections, self._stopped = Connections(), threading.Event()
        front = Front(self.respond, ssl_context, self._connections)
        self.port = front.start(host, port)
        self._front = front
        return self.port

    def ready(self) -> bool:
        return self._front is not None and self.port != 0

    async def stop(self) -> None:
        front, self._front = self._front, None
        if front is None:
            return
        self._stopped.set()
        with self._calls_lock:
            calls = list(self._calls)
        for call in calls:
            call.cancel()
        await asyncio.to_thread(front.close)

    def respond(self, request: Request, body: Body) -> Response:
        """One request, in its connection's thread."""
        def route() -> Response | None:
            path = request.path
            if path == u.HEALTHZ_PATH:
                return text(200, "OK")
            if path in u.PROXY_PATHS:
                return self._upload(request, body)
            return None

        try:
            return cors(request, route)
        except (ClientGone, ConnectionAbortedError):
            raise
        except Exception:
            log.exception("upload proxy: %s %s failed", request.method, request.target)
            return text(500, "500 Internal Server Error\n\nServer got itself in trouble")

    # ---- one upload -------------------------------------------------------------------------------

    def _upload(self, request: Request, body: Body) -> Response:
        header = request.header("Authorization") or ""
        if not header:
            # Upstream answers 400; a missing credential is 401 here, as for any API (issue 5).
            return text(401, "missing upload token", ("WWW-Authenticate", "Bearer"))
        match = _AUTH.match(header)
        if match is None:
            return text(400, "malformed Authorization header: want 'Bearer <token>'")
        claims = self.check_token(match.group(1))
        if claims is None:
            return text(401, "invalid or expired upload token", ("WWW-Authenticate", 'Bearer error="invalid_token"'))
        if claims.operation != u.OPERATION_UPLOAD:
            log.error("Bad token: operation %r", claims.operation)
            return text(400, f"the token is for {claims.operation or 'no'} operation, not {u.OPERATION_UPLOAD}")
        if not claims.is_pvc or not claims.name or not claims.namespace:
            return text(401, "the upload token names no PVC", ("WWW-Authenticate", 'Bearer error="invalid_token"'))
        log.info("Received valid token: pvc: %s, namespace: %s", claims.name, claims.namespace)
        try:
            target = self._call(self._target(claims.name, claims.namespace, request.path))
        except NotReady as err:
            log.warning("%s", err)
            return _refusal(503, str(err))
        except (BackendUnavailable, APIStatusError) as err:
            log.error("cannot reach upload servers: %s", err)
            return _refusal(503, str(err))
        try:
            return forward(request, body, target, retry_for=self.wait_ready, stopped=self._stopped,
                           connections=self._connections)
        except CertificateError as err:
            self._context = None  # the CA may have been re-made: read it again next time
            return self._proxy_error(err)
        except ProxyError as err:
            return self._proxy_error(err)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the proxy's event loop and wait for its result in this thread."""
        loop = self._loop
        if loop is None or self._stopped.is_set():
            coro.close()
            raise ConnectionAbortedError("the upload proxy is stopping")
        try:
            call = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            raise ConnectionAbortedError("the upload proxy is stopping") from None
        with self._calls_lock:
            self._calls.add(call)
        try:
            return call.result()
        except concurrent.futures.CancelledError:
            raise ConnectionAbortedError("the upload proxy is stopping") from None
        finally:
            with self._calls_lock:
                self._calls.discard(call)

    async def _target(self, name: str, namespace: str, request_path: str) -> Target:
        pvc = await self._upload_ready(name, namespace)
        path = resolve_path(pvc, request_path)
        pod_ip, hostname, pod_uid = await self._server_of(pvc)
        local = self.local_path(pod_uid, u.LOCAL_SOCKET) if self.local_path is not None else None
        # The local socket once the server listens there (it does before it answers the readiness probe).
        local_socket = str(local) if local is not None and local.is_socket() else None
        return Target(pod_ip, self.server_port, path, hostname, await self._client_context(), local_socket)

    async def _client_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = client_context(await load_material(self.client, self.cdi_namespace))
        return self._context

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

    async def _server_of(self, pvc: dict[str, Any]) -> tuple[str, str, str]:
        """The upload pod's address, the name its certificate carries, and its UID."""
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
        return str(pod_ip), u.server_hostname(pod_name, meta["namespace"]), str(pod["metadata"].get("uid") or "")

    def _proxy_error(self, err: BaseException) -> Response:
        log.error("Error in reverse proxy: %s", err)
        return _refusal(502, f"error in upload-proxy: {err}")


def _refusal(status: int, message: str) -> Response:
    """A plain-text answer browsers never sniff as HTML (upstream HTML-escapes the text instead)."""
    return text(status, message, ("X-Content-Type-Options", "nosniff"))


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
