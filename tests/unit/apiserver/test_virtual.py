"""Virtual create-only resources an embedder adds: discovery, RBAC before the handler, 201 with its answer,
no other verb, and kubectl's OpenAPI v2 fallback for kinds without PATCH."""

from __future__ import annotations

import secrets
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pycdi.api.crds import all_crds
from pycdi.cluster.apiserver import errors
from pycdi.cluster.apiserver.pki import ensure_pki
from pycdi.cluster.apiserver.rbac import default_cluster_role_bindings, default_cluster_roles
from pycdi.cluster.apiserver.rest.app import APIServer
from pycdi.cluster.apiserver.rest.virtual import VirtualRequest
from pycdi.cluster.control.bootstrap import bootstrap

BASE = "/apis/widgets.example.com/v1"


class Served:
    def __init__(self, server: APIServer, token: str, seen: list[VirtualRequest]) -> None:
        self.server, self.token, self.seen = server, token, seen

    async def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}", **headers}
        ssl_ctx = ssl.create_default_context(cadata=self.server.pki.ca_cert_pem.decode())
        async with aiohttp.ClientSession() as session:
            async with session.request(method, f"https://127.0.0.1:{self.server.port}{path}", json=body,
                                       headers=headers, ssl=ssl_ctx) as resp:
                ctype = resp.headers.get("Content-Type", "")
                return resp.status, (await resp.json() if "json" in ctype else await resp.read())


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    token = secrets.token_urlsafe(16)
    server = APIServer(tmp_path, ensure_pki(tmp_path / "pki"), token)
    seen: list[VirtualRequest] = []

    async def handle(request: VirtualRequest) -> dict[str, Any]:
        seen.append(request)
        if not (request.body.get("spec") or {}).get("size"):
            raise errors.invalid("widgets.example.com", "Widget", "", [
                {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.size"}])
        return {**request.body, "status": {"made": request.body["spec"]["size"] * 2}}

    server.virtual.register("widgets.example.com", "v1", "widgets", "Widget", handle, short_names=("wg",))
    await bootstrap(server.service, all_crds(), default_cluster_roles(), default_cluster_role_bindings())
    await server.start("127.0.0.1", 0)
    try:
        yield Served(server, token, seen)
    finally:
        await server.stop()


async def test_create_is_answered_by_the_handler(served: Served) -> None:
    body = {"apiVersion": "widgets.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}}
    status, answer = await served.call("POST", f"{BASE}/namespaces/team/widgets", body)
    assert status == 201 and answer["status"] == {"made": 4}
    request = served.seen[-1]
    assert request.namespace == "team" and request.user.name == "admin"
    status, answer = await served.call("POST", f"{BASE}/namespaces/team/widgets", {**body, "spec": {}})
    assert status == 422 and "spec.size" in answer["message"]
    for method, path in (("GET", f"{BASE}/namespaces/team/widgets"), ("GET", f"{BASE}/namespaces/team/widgets/w"),
                         ("DELETE", f"{BASE}/namespaces/team/widgets/w")):
        assert (await served.call(method, path))[0] == 405, (method, path)


async def test_rbac_decides_before_the_handler_runs(served: Served) -> None:
    body = {"apiVersion": "widgets.example.com/v1", "kind": "Widget", "spec": {"size": 1}}
    status, answer = await served.call("POST", f"{BASE}/namespaces/team/widgets", body, **{"Impersonate-User": "bob"})
    assert status == 403 and answer["reason"] == "Forbidden"
    assert 'cannot create resource "widgets" in API group "widgets.example.com"' in answer["message"]
    assert served.seen == []


async def test_discovery_lists_it_create_only(served: Served) -> None:
    status, doc = await served.call("GET", BASE)
    assert status == 200
    assert doc["resources"] == [{"name": "widgets", "singularName": "widget", "namespaced": True, "kind": "Widget",
                                 "verbs": ["create"], "shortNames": ["wg"]}]
    status, groups = await served.call("GET", "/apis")
    assert "widgets.example.com" in {g["name"] for g in groups["groups"]}


async def test_openapi_v2_is_an_empty_document(served: Served) -> None:
    status, doc = await served.call("GET", "/openapi/v2")
    assert status == 200 and doc["swagger"] == "2.0" and doc["definitions"] == {}
    status, raw = await served.call("GET", "/openapi/v2",
                                    Accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert status == 200 and raw == b"\x0a\x032.0"
