"""The API server: wires store, catalog, service, authn/authz and the REST handlers into one aiohttp app."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .. import errors
from ..admission import AdmissionChain
from ..authn import Authenticator
from ..catalog import Catalog
from ..discovery import (
    aggregated_content_type,
    aggregated_discovery,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    discovery_content_type,
)
from ..escalation import EscalationCheck
from ..openapi import openapi_v3_document, openapi_v3_index
from ..pki import PKI
from ..rbac import Attributes, Authorizer, UserInfo
from ..service import ObjectService
from ..store import Event, Store
from .handlers import ResourceHandler, json_response
from .paths import USER
from .reviews import Reviews
from .subresources import Subresources
from .virtual import VirtualResources

log = logging.getLogger(__name__)

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0+pycdi", "gitCommit": "pycdi",
                "gitTreeState": "clean", "buildDate": "2026-11-23T00:00:00Z", "goVersion": "go1.23.0",
                "compiler": "gc", "platform": "linux/amd64"}
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
RBAC_KEYS = {f"rbac.authorization.k8s.io/{r}" for r in ("roles", "rolebindings", "clusterroles",
                                                         "clusterrolebindings")}
CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"


#: protobuf `openapi_v2.Document{swagger: "2.0"}`: the v2 document kubectl falls back to for kinds without PATCH.
_OPENAPI_V2_PROTOBUF = b"\x0a\x032.0"
_OPENAPI_V2_PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _openapi_v2(request: web.Request) -> web.Response:
    """An OpenAPI v2 document without definitions: schemas are published in v3 only.

    kubectl validates create-only kinds (reviews, UploadTokenRequest: no PATCH, so no server-side field
    validation) against v2; a kind it does not find there is sent unvalidated, as a 404 would not be.
    """
    if "protobuf" in request.headers.get("Accept", ""):
        return web.Response(body=_OPENAPI_V2_PROTOBUF, headers={"Content-Type": _OPENAPI_V2_PROTOBUF_TYPE})
    return json_response({"swagger": "2.0", "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
                          "paths": {}, "definitions": {}})


class StoreRBACSource:
    """Feeds the authorizer from the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def list_objects(self, storage_key: str, namespace: str | None) -> list[dict[str, Any]]:
        return list(self._store.iter_objects(storage_key, namespace))


class APIServer:
    """One embedded API server over one data directory."""

    token_issuer = "https://kubernetes.default.svc.cluster.local"

    def __init__(self, data_dir: Path, pki: PKI, admin_token: str) -> None:
        self.data_dir = data_dir
        self.pki = pki
        self.store = Store(data_dir / "state.db")
        self.catalog = Catalog()
        self.admission = AdmissionChain()
        self.service = ObjectService(self.store, self.catalog, self.admission)
        self.authorizer = Authorizer(StoreRBACSource(self.store))
        self.admission.register(EscalationCheck(self.authorizer, self.store))
        self.authenticator = Authenticator(self.store, admin_token, pki.sa_public_key_pem)
        self.resources = ResourceHandler(self)
        self.reviews = Reviews(self)
        #: Create-only resources the embedder serves through its own handlers (rest/virtual.py).
        self.virtual = VirtualResources(self.catalog)
        self.subresources = Subresources(self)
        #: Named readiness checks, listed by `/readyz?verbose`.
        self.readiness: dict[str, Callable[[], bool]] = {"ping": lambda: True, "store": lambda: True}
        self._discovery_cache: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.catalog.on_change(self._discovery_cache.clear)
        self.store.add_listener(self._on_event)
        for crd in self.store.iter_objects(CRD_KEY):
            self.catalog.set_crd(crd)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- reactions to writes ---------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.key in RBAC_KEYS:
            self.authorizer.invalidate()
        elif event.key == CRD_KEY:
            if event.type == "DELETED":
                self.catalog.remove_crd(event.name)
            else:
                self.catalog.set_crd(event.object)

    # ---- authorization ---------------------------------------------------------------------------

    def authorize(self, attrs: Attributes) -> None:
        decision = self.authorizer.authorize(attrs)
        if decision.allowed:
            return
        if not attrs.resource_request:
            raise errors.forbidden_message(
                f'forbidden: User "{attrs.user.name}" cannot {attrs.verb} path "{attrs.path}"')
        raise errors.forbidden(attrs.user.name, attrs.verb, attrs.api_group, attrs.resource, attrs.name,
                               attrs.namespace, attrs.subresource)

    # ---- HTTP ------------------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.APIError as e:
            return json_response(e.status(), e.code)
        except web.HTTPException:
            raise
        except Exception as e:  # an unexpected failure still answers with a Status, and is logged
            log.exception("request %s %s failed", request.method, request.path)
            err = errors.internal(str(e))
            return json_response(err.status(), err.code)

    @web.middleware
    async def _authenticate(self, request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        user = self.authenticator.authenticate(request.headers.get("Authorization"))
        path = request.path.rstrip("/") or "/"
        if user is None:
            if not path.startswith(PUBLIC_PATHS):
                raise errors.unauthorized()
            user = UserInfo(name="system:anonymous", groups=("system:unauthenticated",))
        if "Impersonate-User" in request.headers or "Impersonate-Group" in request.headers:
            user = self._impersonate(request, user)
        request[USER] = user
        return await handler(request)

    def _impersonate(self, request: web.Request, user: UserInfo) -> UserInfo:
        """Act as another user (kubectl --as/--as-group), when the caller may `impersonate` them."""
        name = request.headers.get("Impersonate-User", "")
        groups = tuple(request.headers.getall("Impersonate-Group", []))
        if not name:
            raise errors.bad_request("requested impersonation of groups without impersonating a user")
        checks: list[Attributes] = []
        sa_prefix = "system:serviceaccount:"
        if name.startswith(sa_prefix) and name.count(":") == 3:
            ns, sa = name[len(sa_prefix):].split(":", 1)
            checks.append(Attributes(user=user, verb="impersonate", namespace=ns, resource="serviceaccounts",
                                     name=sa))
        else:
            checks.append(Attributes(user=user, verb="impersonate", resource="users", name=name))
        checks += [Attributes(user=user, verb="impersonate", resource="groups", name=g) for g in groups]
        for attrs in checks:
            if not self.authorizer.authorize(attrs).allowed:
                raise errors.forbidden(user.name, "impersonate", "", attrs.resource, attrs.name, attrs.namespace)
        if name.startswith(sa_prefix):
            ns = name.split(":")[2] if name.count(":") == 3 else ""
            groups += ("system:serviceaccounts", f"system:serviceaccounts:{ns}")
        if name != "system:anonymous":
            groups += ("system:authenticated",)
        return UserInfo(name=name, groups=tuple(dict.fromkeys(groups)))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._authenticate], client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = path.strip("/").split("/")
        user = request[USER]
        if parts[0] == "api" and len(parts) >= 3:
            return await self.resources.handle(request, "", parts[1], "/".join(parts[2:]))
        if parts[0] == "apis" and len(parts) >= 4:
            return await self.resources.handle(request, parts[1], parts[2], "/".join(parts[3:]))
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        self.authorize(Attributes(user=user, verb="get", path=path, resource_request=False))
        if path == "/version":
            return json_response(KUBE_VERSION)
        if parts[0] in ("healthz", "livez", "readyz"):
            return self._health(request, parts)
        if parts[0] in ("api", "apis"):
            return self._discovery(request, parts)
        if parts == ["openapi", "v2"]:
            return _openapi_v2(request)
        if parts[0] == "openapi":
            return self._openapi(parts)
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource", {})

    def _health(self, request: web.Request, parts: list[str]) -> web.Response:
        checks = self.readiness if parts[0] == "readyz" else {"ping": lambda: True}
        if len(parts) == 2:
            check = checks.get(parts[1])
            if check is None:
                raise errors.APIError(404, "NotFound", "the server could not find the requested resource", {})
            ok = check()
            return web.Response(text="ok" if ok else f"{parts[1]} check failed", status=200 if ok else 500)
        results = {name: check() for name, check in checks.items()}
        healthy = all(results.values())
        if "verbose" in request.query or not healthy:
            lines = [f"[+]{n} ok" if ok else f"[-]{n} failed: reason withheld" for n, ok in results.items()]
            lines.append(f"{parts[0]} check passed" if healthy else f"{parts[0]} check failed")
            return web.Response(text="\n".join(lines) + "\n", status=200 if healthy else 500)
        return web.Response(text="ok")

    def _discovery(self, request: web.Request, parts: list[str]) -> web.Response:
        aggregated = discovery_content_type(request.headers.get("Accept", ""))
        key = ("/".join(parts), aggregated or "")
        cached = self._discovery_cache.get(key)
        if cached is None:
            infos = list(self.catalog.all())
            ctype = "application/json"
            doc: Any
            if aggregated and len(parts) == 1:
                ctype = aggregated_content_type(aggregated)
                doc = aggregated_discovery(infos, core=parts[0] == "api", version=aggregated)
            elif parts == ["api"]:
                doc = api_versions(f"127.0.0.1:{self.port}")
            elif parts == ["apis"]:
                doc = api_group_list(infos)
            elif parts[0] == "api" and len(parts) == 2:
                doc = api_resource_list(infos, "", parts[1])
            elif parts[0] == "apis" and len(parts) == 2:
                doc = api_group(infos, parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                doc = api_resource_list(infos, parts[1], parts[2])
            else:
                doc = None
            if doc is None:
                raise errors.APIError(404, "NotFound", "the server could not find the requested resource", {})
            cached = (ctype, json.dumps(doc, separators=(",", ":")).encode())
            self._discovery_cache[key] = cached
        ctype, body = cached
        return web.Response(body=body, headers={"Content-Type": ctype})

    def _openapi(self, parts: list[str]) -> web.Response:
        key = ("/".join(parts), "openapi")
        cached = self._discovery_cache.get(key)
        if cached is None:
            infos = list(self.catalog.all())
            doc: Any = None
            if parts == ["openapi", "v3"]:
                doc = openapi_v3_index(infos)
            elif len(parts) == 4 and parts[1:3] == ["v3", "api"]:
                doc = openapi_v3_document(infos, "", parts[3])
            elif len(parts) == 5 and parts[1:3] == ["v3", "apis"]:
                doc = openapi_v3_document(infos, parts[3], parts[4])
            if doc is None:
                raise errors.APIError(404, "NotFound", "the server could not find the requested resource", {})
            cached = ("application/json", json.dumps(doc, separators=(",", ":")).encode())
            self._discovery_cache[key] = cached
        return web.Response(body=cached[1], headers={"Content-Type": cached[0]})

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.pki.server_cert_path), str(self.pki.server_key_path))
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=context, backlog=1024)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        return self.port

    async def stop(self) -> None:
        # End the watch streams first, so that the HTTP shutdown does not wait for their clients.
        self.store.end_watches()
        if self._runner is not None:
            await self._runner.shutdown()
            await self._runner.cleanup()
            self._runner = None
        self.store.close()
