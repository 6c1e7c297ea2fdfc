"""A throwaway HTTPS server on 127.0.0.1 that answers kubectl's discovery and records every POST body."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from pycdi.cluster.apiserver.pki import ensure_pki
from pycdi.cluster.apiserver.protobuf import (
    PROTOBUF_CONTENT_TYPE,
    ProtobufError,
    decode_protobuf_object,
)

TOKEN = "capture-token-0123456789"
KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")


@dataclass
class Captured:
    """One POST as the server saw it."""

    path: str
    query: dict[str, str]
    content_type: str
    authorization: str
    body: bytes


@dataclass
class TLSFiles:
    ca_pem: bytes
    cert_path: Path
    key_path: Path


def make_tls(directory: Path, common_name: str = "127.0.0.1") -> TLSFiles:
    """A CA plus a serving certificate for 127.0.0.1 signed by it: the project's own PKI."""
    pki = ensure_pki(directory / "pki", hosts=(common_name, "localhost"))
    return TLSFiles(pki.ca_cert_pem, pki.server_cert_path, pki.server_key_path)


def _resource(name: str, kind: str, namespaced: bool, verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs, **extra}


_CRUD = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# Minimal legacy discovery (kube-api-compat.md §1.1): enough for kubectl's RESTMapper.
_GROUPS: dict[str, list[dict[str, Any]]] = {
    "v1": [
        _resource("namespaces", "Namespace", False, _CRUD, shortNames=["ns"]),
        _resource("configmaps", "ConfigMap", True, _CRUD, shortNames=["cm"]),
        _resource("secrets", "Secret", True, _CRUD),
        _resource("serviceaccounts", "ServiceAccount", True, _CRUD, shortNames=["sa"]),
        _resource(
            "serviceaccounts/token",
            "TokenRequest",
            True,
            ["create"],
            group="authentication.k8s.io",
            version="v1",
        ),
        _resource("pods", "Pod", True, _CRUD, shortNames=["po"], categories=["all"]),
    ],
    "rbac.authorization.k8s.io/v1": [
        _resource("roles", "Role", True, _CRUD),
        _resource("clusterroles", "ClusterRole", False, _CRUD),
        _resource("rolebindings", "RoleBinding", True, _CRUD),
        _resource("clusterrolebindings", "ClusterRoleBinding", False, _CRUD),
    ],
    "authorization.k8s.io/v1": [
        _resource("selfsubjectaccessreviews", "SelfSubjectAccessReview", False, ["create"]),
        _resource("selfsubjectrulesreviews", "SelfSubjectRulesReview", True, ["create"]),
    ],
    "authentication.k8s.io/v1": [
        _resource("selfsubjectreviews", "SelfSubjectReview", False, ["create"]),
        _resource("tokenreviews", "TokenReview", False, ["create"]),
    ],
    "cdi.kubevirt.io/v1beta1": [
        _resource("datavolumes", "DataVolume", True, _CRUD, shortNames=["dv"], categories=["all"]),
        _resource("datavolumes/source", "DataVolume", True, ["create"]),
        _resource("datavolumes/status", "DataVolume", True, ["get", "patch", "update"]),
    ],
}


def _status_for(obj: dict[str, Any]) -> dict[str, Any]:
    """A plausible server-filled status so kubectl can print its usual result."""
    kind = obj.get("kind")
    if kind == "SelfSubjectAccessReview":
        return {"allowed": True}
    if kind == "SelfSubjectRulesReview":
        return {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [],
            "incomplete": False,
        }
    if kind == "SelfSubjectReview":
        return {"userInfo": {"username": "capture-user", "groups": ["system:authenticated"]}}
    if kind == "TokenRequest":
        return {"token": "issued-token", "expirationTimestamp": "2030-01-01T00:00:00Z"}
    return dict(obj.get("status") or {})


class CaptureServer:
    """Runs the aiohttp app on its own event loop thread so tests can call kubectl synchronously."""

    def __init__(self, directory: Path, missing_paths: frozenset[str] = frozenset()) -> None:
        self.directory = directory
        self.tls = make_tls(directory)
        self.captured: list[Captured] = []
        self.requests: list[tuple[str, str]] = []
        self.missing_paths = missing_paths
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.cert_path, self.tls.key_path)
        # Bind the socket ourselves: port 0 picks a free port, and we can read it back.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, ssl_context=context).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- kubectl -----------------------------------------------------------------------------
    def kubeconfig(self) -> Path:
        path = self.directory / "kubeconfig"
        ca = base64.b64encode(self.tls.ca_pem).decode()
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "capture",
                    "clusters": [
                        {
                            "name": "capture",
                            "cluster": {
                                "server": f"https://127.0.0.1:{self.port}",
                                "certificate-authority-data": ca,
                            },
                        }
                    ],
                    "users": [{"name": "capture", "user": {"token": TOKEN}}],
                    "contexts": [
                        {
                            "name": "capture",
                            "context": {"cluster": "capture", "user": "capture", "namespace": "default"},
                        }
                    ],
                }
            )
        )
        return path

    def kubectl(
        self, *args: str, version: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl (the dispatcher, or kubectl.1.<version>) against this server."""
        binary = str(KUBECTL_DIR / f"kubectl.1.{version}") if version else "kubectl"
        cache = self.directory / "cache"
        env = {**os.environ, "HOME": str(self.directory), "KUBECONFIG": str(self.kubeconfig())}
        result = subprocess.run(
            [binary, "--kubeconfig", str(self.kubeconfig()), "--cache-dir", str(cache), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {args} failed ({result.returncode}): {result.stderr}")
        return result

    def take(self) -> list[Captured]:
        """The POSTs recorded since the last call."""
        taken, self.captured = self.captured, []
        return taken

    # --- HTTP --------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"].rstrip("/")
        self.requests.append((request.method, path))
        if request.method == "POST":
            return await self._post(request, path)
        if path in self.missing_paths:
            return self._status(404, "NotFound", "the server could not find the requested resource")
        if path == "/version":
            return web.json_response(
                {"major": "1", "minor": "32", "gitVersion": "v1.32.4", "platform": "linux/amd64"}
            )
        if path == "/api":
            return web.json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                    ],
                }
            )
        if path == "/apis":
            groups = []
            for group_version in _GROUPS:
                if "/" not in group_version:
                    continue
                name, version = group_version.split("/")
                entry = {"groupVersion": group_version, "version": version}
                groups.append({"name": name, "versions": [entry], "preferredVersion": entry})
            return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        group_version = path.removeprefix("/api/").removeprefix("/apis/")
        if group_version in _GROUPS:
            return web.json_response(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": group_version,
                    "resources": _GROUPS[group_version],
                }
            )
        return self._status(404, "NotFound", "the server could not find the requested resource")

    async def _post(self, request: web.Request, path: str) -> web.Response:
        body = await request.read()
        self.captured.append(
            Captured(
                path,
                dict(request.query),
                request.content_type,
                request.headers.get("Authorization", ""),
                body,
            )
        )
        if path in self.missing_paths:
            return self._status(404, "NotFound", "the server could not find the requested resource")
        if request.content_type == PROTOBUF_CONTENT_TYPE:
            try:
                obj = decode_protobuf_object(body)
            except ProtobufError as exc:
                return self._status(415, "UnsupportedMediaType", str(exc))
        else:
            obj = json.loads(body)
        metadata = obj.setdefault("metadata", {})
        metadata.setdefault("name", metadata.get("generateName", "") + "x")
        metadata.update(
            {
                "uid": "00000000-0000-0000-0000-000000000001",
                "resourceVersion": "1",
                "creationTimestamp": "2024-01-02T03:04:05Z",
            }
        )
        obj["status"] = _status_for(obj)
        return web.json_response(obj, status=201)

    @staticmethod
    def _status(code: int, reason: str, message: str) -> web.Response:
        return web.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": code,
            },
            status=code,
        )
