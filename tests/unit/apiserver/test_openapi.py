"""OpenAPI v3 documents, checked by shape and against the real kubectl through a throwaway HTTPS server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pycdi.cluster.apiserver import discovery, openapi
from pycdi.cluster.apiserver.pki import ensure_pki
from pycdi.cluster.apiserver.resources import ResourceInfo

DV_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "DataVolume is an abstraction on top of PersistentVolumeClaims.",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "description": "DataVolumeSpec defines the DataVolume type specification",
            "properties": {
                "source": {
                    "type": "object",
                    "description": "Source is the src of the data for the requested DataVolume",
                    "properties": {"http": {"type": "object", "properties": {"url": {"type": "string"}}}},
                },
                "contentType": {"type": "string", "enum": ["kubevirt", "archive"]},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}

INFOS = [
    ResourceInfo("", "v1", "configmaps", "ConfigMap", True, singular="configmap", short_names=("cm",)),
    ResourceInfo(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        singular="namespace",
        short_names=("ns",),
        subresources=frozenset({"status", "finalize"}),
    ),
    ResourceInfo(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        singular="pod",
        short_names=("po",),
        categories=("all",),
        subresources=frozenset({"status", "log", "binding", "eviction"}),
    ),
    ResourceInfo(
        "cdi.kubevirt.io",
        "v1beta1",
        "datavolumes",
        "DataVolume",
        True,
        singular="datavolume",
        short_names=("dv", "dvs"),
        categories=("all",),
        subresources=frozenset({"status"}),
        custom=True,
        schema=DV_SCHEMA,
    ),
    ResourceInfo(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        verbs=("create",),
        stored=False,
    ),
]

TOKEN = "test-token-123"


def test_schema_names() -> None:
    assert openapi.schema_name(INFOS[0]) == "io.k8s.api.core.v1.ConfigMap"
    assert openapi.schema_name(INFOS[3]) == "io.kubevirt.cdi.v1beta1.DataVolume"
    assert openapi.schema_name(INFOS[4]) == "io.k8s.api.authorization.v1.SelfSubjectAccessReview"


def test_document_paths_and_operations() -> None:
    doc = openapi.openapi_v3_document(INFOS, "cdi.kubevirt.io", "v1beta1")
    assert doc is not None
    item = doc["paths"]["/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "cdi.kubevirt.io",
        "version": "v1beta1",
        "kind": "DataVolume",
    }
    names = {p["name"] for p in patch["parameters"]}
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
    # CRs do not take strategic merge patches; built-ins do.
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    collection = doc["paths"]["/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes"]
    assert collection["post"]["x-kubernetes-action"] == "post"
    assert collection["get"]["x-kubernetes-action"] == "list"
    assert "/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes/{name}/status" in doc["paths"]
    assert "/apis/cdi.kubevirt.io/v1beta1/datavolumes" in doc["paths"]
    schema = doc["components"]["schemas"]["io.kubevirt.cdi.v1beta1.DataVolume"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "cdi.kubevirt.io", "version": "v1beta1", "kind": "DataVolume"}
    ]
    assert schema["properties"]["spec"]["properties"]["contentType"]["enum"] == ["kubevirt", "archive"]
    assert schema["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert DV_SCHEMA["properties"]["metadata"] == {"type": "object"}  # the CRD's schema is left untouched
    # Every reference resolves inside the document.
    refs = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if "$ref" in x:
                refs.add(x["$ref"].rsplit("/", 1)[1])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    assert refs <= set(doc["components"]["schemas"])


def test_builtin_schema_is_minimal_and_create_only_resources() -> None:
    doc = openapi.openapi_v3_document(INFOS, "", "v1")
    assert doc is not None
    cm = doc["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"]
    assert cm["x-kubernetes-preserve-unknown-fields"] is True
    assert cm["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "ConfigMap"}]
    patch = doc["paths"]["/api/v1/namespaces/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    ssar = openapi.openapi_v3_document(INFOS, "authorization.k8s.io", "v1")
    assert ssar is not None
    assert list(ssar["paths"]) == ["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert list(ssar["paths"]["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]) == [
        "post",
        "parameters",
    ]
    assert openapi.openapi_v3_document(INFOS, "nope", "v1") is None


def test_index_hash_is_stable_and_changes_with_content() -> None:
    index = openapi.openapi_v3_index(INFOS)
    assert set(index["paths"]) == {"api/v1", "apis/cdi.kubevirt.io/v1beta1", "apis/authorization.k8s.io/v1"}
    url = index["paths"]["apis/cdi.kubevirt.io/v1beta1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/cdi.kubevirt.io/v1beta1?hash=")
    assert openapi.openapi_v3_index(list(reversed(INFOS))) == index
    changed = [
        *INFOS[:3],
        ResourceInfo(
            "cdi.kubevirt.io",
            "v1beta1",
            "datavolumes",
            "DataVolume",
            True,
            custom=True,
            schema={"type": "object"},
        ),
        INFOS[4],
    ]
    other = openapi.openapi_v3_index(changed)
    assert other["paths"]["apis/cdi.kubevirt.io/v1beta1"] != index["paths"]["apis/cdi.kubevirt.io/v1beta1"]
    assert other["paths"]["api/v1"] == index["paths"]["api/v1"]


# --- the real kubectl against a throwaway HTTPS server ------------------------------------------------


def _tls(tmp: Path) -> tuple[bytes, Path, Path]:
    pki = ensure_pki(tmp / "pki")
    return pki.ca_cert_pem, pki.server_cert_path, pki.server_key_path


class FakeServer:
    """Serves discovery and OpenAPI from INFOS, stores POSTed objects, answers PATCH with the stored one."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.objects: dict[str, dict[str, Any]] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth])
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.text()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "content_type": request.headers.get("Content-Type", ""),
                "body": body,
                "accept": request.headers.get("Accept", ""),
            }
        )
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"kind": "Status", "code": 401, "reason": "Unauthorized"}, status=401)
        result: web.StreamResponse = await handler(request)
        return result

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        accept = request.headers.get("Accept", "")
        if path == "/version":
            return web.json_response(
                {"major": "1", "minor": "32", "gitVersion": "v1.32.4", "platform": "linux/amd64"}
            )
        if path in ("/api", "/apis"):
            version = discovery.discovery_content_type(accept)
            if version:
                doc = discovery.aggregated_discovery(INFOS, core=path == "/api", version=version)
                return web.Response(
                    body=json.dumps(doc).encode(),
                    headers={"Content-Type": discovery.aggregated_content_type(version)},
                )
            if path == "/api":
                return web.json_response(discovery.api_versions(request.host))
            return web.json_response(discovery.api_group_list(INFOS))
        if path == "/openapi/v3":
            return web.json_response(openapi.openapi_v3_index(INFOS))
        if path.startswith("/openapi/v3/"):
            parts = path.split("/")[3:]
            if parts[0] == "apis" and len(parts) == 3:
                gv_doc = openapi.openapi_v3_document(INFOS, parts[1], parts[2])
            else:
                gv_doc = openapi.openapi_v3_document(INFOS, "", parts[-1]) if parts[0] == "api" else None
            return web.json_response(gv_doc) if gv_doc else web.Response(status=404)
        parts = path.split("/")[1:]
        if parts[0] not in ("api", "apis") or len(parts) < 2:
            return web.Response(status=404)
        if parts[0] == "apis" and len(parts) == 2:
            group_doc = discovery.api_group(INFOS, parts[1])
            return web.json_response(group_doc) if group_doc else web.Response(status=404)
        gv = parts[:2] if parts[0] == "api" else parts[:3]
        rest = parts[len(gv) :]
        group, version = ("", gv[1]) if gv[0] == "api" else (gv[1], gv[2])
        if not rest:
            resources = discovery.api_resource_list(INFOS, group, version)
            return web.json_response(resources) if resources else web.Response(status=404)
        if request.method == "POST":
            obj = json.loads(await request.text())
            obj.setdefault("metadata", {}).update(
                {"uid": "u-1", "resourceVersion": "1", "namespace": "default"}
            )
            self.objects[f"{path}/{obj['metadata']['name']}"] = obj
            return web.json_response(obj, status=201)
        if request.method == "GET" and path in self.objects:
            return web.json_response(self.objects[path])
        if request.method == "PATCH" and path in self.objects:
            return web.json_response(self.objects[path])
        return web.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
                "message": "not found",
                "metadata": {},
            },
            status=404,
        )


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeServer, Path]]:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl not installed")
    tmp = tmp_path_factory.mktemp("kube")
    ca_pem, cert, key = _tls(tmp)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = FakeServer()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.app(), access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "t",
                "clusters": [
                    {
                        "name": "t",
                        "cluster": {
                            "server": f"https://127.0.0.1:{port}",
                            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u", "namespace": "default"}}],
            }
        )
    )
    try:
        yield server, kubeconfig
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _kubectl(
    kubeconfig: Path, *args: str, binary: str = "kubectl", stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    cache = kubeconfig.parent / f"cache-{binary.rsplit('.', 1)[-1]}"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    return subprocess.run(
        [binary, "--cache-dir", str(cache), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


DV_YAML = """
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: dv1
spec:
  contentType: kubevirt
  source:
    http:
      url: http://example.com/disk.img
"""

CM_YAML = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm1
data:
  a: "1"
"""


def test_kubectl_api_resources(kube: tuple[FakeServer, Path]) -> None:
    server, kubeconfig = kube
    result = _kubectl(kubeconfig, "api-resources")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert lines["datavolumes"][1:3] == ["dv,dvs", "cdi.kubevirt.io/v1beta1"]
    assert lines["configmaps"][1:3] == ["cm", "v1"]
    assert "selfsubjectaccessreviews" in lines


def test_kubectl_apply_create_and_reapply(kube: tuple[FakeServer, Path]) -> None:
    server, kubeconfig = kube
    result = _kubectl(kubeconfig, "apply", "-f", "-", stdin=DV_YAML)
    assert result.returncode == 0, result.stderr
    assert "datavolume.cdi.kubevirt.io/dv1 created" in result.stdout
    posts = [r for r in server.requests if r["method"] == "POST" and r["path"].endswith("/datavolumes")]
    assert posts and posts[-1]["query"]["fieldValidation"] == "Strict"

    result = _kubectl(kubeconfig, "create", "-f", "-", stdin=CM_YAML)
    assert result.returncode == 0, result.stderr
    assert "configmap/cm1 created" in result.stdout
    posts = [r for r in server.requests if r["method"] == "POST" and r["path"].endswith("/configmaps")]
    assert posts[-1]["query"] == {"fieldManager": "kubectl-create", "fieldValidation": "Strict"}

    # Re-applying a changed built-in: kubectl must still compute a sane strategic merge patch.
    server.objects["/api/v1/namespaces/default/configmaps/cm1"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cm1", "namespace": "default"},
                "data": {"a": "1"},
            }
        )
    }
    result = _kubectl(kubeconfig, "apply", "-f", "-", stdin=CM_YAML.replace('a: "1"', 'a: "2"'))
    assert result.returncode == 0, result.stderr
    patches = [r for r in server.requests if r["method"] == "PATCH" and r["path"].endswith("/cm1")]
    assert patches[-1]["content_type"] == "application/strategic-merge-patch+json"
    assert json.loads(patches[-1]["body"])["data"] == {"a": "2"}
    assert patches[-1]["query"]["fieldValidation"] == "Strict"


def test_kubectl_explain_crd(kube: tuple[FakeServer, Path]) -> None:
    _, kubeconfig = kube
    result = _kubectl(kubeconfig, "explain", "datavolume.spec")
    assert result.returncode == 0, result.stderr
    assert "DataVolumeSpec defines the DataVolume type specification" in result.stdout
    assert "contentType" in result.stdout and "source" in result.stdout
    result = _kubectl(kubeconfig, "explain", "dv.spec.source.http")
    assert result.returncode == 0, result.stderr
    assert "url" in result.stdout


@pytest.mark.parametrize("minor", ["29", "33"])
def test_other_kubectl_versions_apply(kube: tuple[FakeServer, Path], minor: str) -> None:
    binary = f"/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}"
    if not os.path.exists(binary):
        pytest.skip(f"{binary} missing")
    server, kubeconfig = kube
    result = _kubectl(
        kubeconfig, "apply", "-f", "-", binary=binary, stdin=DV_YAML.replace("name: dv1", f"name: dv-{minor}")
    )
    assert result.returncode == 0, result.stderr
    assert f"datavolume.cdi.kubevirt.io/dv-{minor} created" in result.stdout
    apis = [r for r in server.requests if r["path"] == "/apis"]
    if minor == "29":  # 1.27-1.29 only ask for v2beta1 aggregated discovery
        assert "v=v2beta1" in apis[-1]["accept"] and "v=v2;" not in apis[-1]["accept"]
