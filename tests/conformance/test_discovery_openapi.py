"""Discovery (legacy and aggregated), /version and OpenAPI v3, as kubectl and the Python clients read them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cluster import Cluster

Obj = dict[str, Any]
V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
CRUD_VERBS = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}


def get(cluster: Cluster, path: str, accept: str | None = None) -> tuple[Obj, dict[str, str]]:
    status, body, headers = cluster.request("GET", path, headers={"Accept": accept} if accept else None)
    assert status == 200, (path, body)
    assert isinstance(body, dict)
    return body, headers


def test_version_reports_1_32(cluster: Cluster) -> None:
    body, _ = get(cluster, "/version")
    assert body["major"] == "1" and body["minor"] == "32"
    assert body["gitVersion"].startswith("v1.32.")
    assert {"gitCommit", "buildDate", "goVersion", "platform"} <= set(body)
    assert "Server Version: v1.32." in cluster.kubectl("version").stdout


def test_api_and_apis_roots(cluster: Cluster) -> None:
    api, _ = get(cluster, "/api")
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    apis, _ = get(cluster, "/apis")
    assert apis["kind"] == "APIGroupList" and apis["apiVersion"] == "v1"
    groups = {g["name"]: g for g in apis["groups"]}
    for name in ("apiextensions.k8s.io", "cdi.kubevirt.io", "storage.k8s.io", "rbac.authorization.k8s.io",
                 "coordination.k8s.io"):
        assert name in groups, name
    cdi = groups["cdi.kubevirt.io"]
    assert cdi["preferredVersion"] == {"groupVersion": "cdi.kubevirt.io/v1beta1", "version": "v1beta1"}
    assert {"groupVersion": "cdi.kubevirt.io/v1beta1", "version": "v1beta1"} in cdi["versions"]
    group, _ = get(cluster, "/apis/cdi.kubevirt.io")
    assert group["kind"] == "APIGroup" and group["name"] == "cdi.kubevirt.io"
    assert group["preferredVersion"]["version"] == "v1beta1"


@pytest.mark.parametrize("path", ["/version/", "/api/", "/apis/", "/api/v1/", "/apis/cdi.kubevirt.io/v1beta1/",
                                  "/api/v1/namespaces/default/", "/api/v1/namespaces/default/configmaps/"])
def test_trailing_slashes_are_tolerated(cluster: Cluster, path: str) -> None:
    with_slash, _ = get(cluster, path)
    without, _ = get(cluster, path.rstrip("/"))
    assert with_slash.get("kind") == without.get("kind")


def test_core_v1_resource_list(cluster: Cluster) -> None:
    body, _ = get(cluster, "/api/v1")
    assert body["kind"] == "APIResourceList" and body["groupVersion"] == "v1"
    res = {r["name"]: r for r in body["resources"]}
    pods = res["pods"]
    assert pods["kind"] == "Pod" and pods["namespaced"] is True and pods["singularName"] == "pod"
    assert set(pods["verbs"]) == CRUD_VERBS and pods["shortNames"] == ["po"] and "all" in pods["categories"]
    assert set(res["pods/status"]["verbs"]) == {"get", "patch", "update"} and res["pods/status"]["kind"] == "Pod"
    assert res["pods/log"]["verbs"] == ["get"] and res["pods/log"]["kind"] == "Pod"
    token = res["serviceaccounts/token"]
    assert token["verbs"] == ["create"] and token["kind"] == "TokenRequest"
    assert token["group"] == "authentication.k8s.io" and token["version"] == "v1"
    ns = res["namespaces"]
    assert ns["namespaced"] is False and ns["shortNames"] == ["ns"]
    for name in ("configmaps", "secrets", "persistentvolumeclaims", "persistentvolumes", "events", "services",
                 "serviceaccounts"):
        assert name in res, name
    assert res["persistentvolumeclaims"]["shortNames"] == ["pvc"]


def test_cdi_group_version_resource_list(cluster: Cluster) -> None:
    body, _ = get(cluster, "/apis/cdi.kubevirt.io/v1beta1")
    assert body["kind"] == "APIResourceList" and body["groupVersion"] == "cdi.kubevirt.io/v1beta1"
    res = {r["name"]: r for r in body["resources"]}
    dv = res["datavolumes"]
    assert dv["kind"] == "DataVolume" and dv["singularName"] == "datavolume" and dv["namespaced"] is True
    assert dv["shortNames"] == ["dv", "dvs"] and dv["categories"] == ["all"]
    assert set(dv["verbs"]) == CRUD_VERBS
    assert set(res["datavolumes/status"]["verbs"]) == {"get", "patch", "update"}
    assert res["cdiconfigs"]["namespaced"] is False


def test_unknown_group_version_is_404(cluster: Cluster) -> None:
    for path in ("/apis/nothing.example.com/v1", "/apis/cdi.kubevirt.io/v9", "/api/v2", "/apis/nothing.example.com"):
        status, body, _ = cluster.request("GET", path)
        assert status == 404, path
        assert body["kind"] == "Status" and body["reason"] == "NotFound"


@pytest.mark.parametrize(("accept", "version"), [(V2, "v2"), (V2BETA1, "v2beta1"),
                                                  (f"{V2},{V2BETA1},application/json", "v2"),
                                                  (f"{V2BETA1},application/json", "v2beta1")])
def test_aggregated_discovery_by_accept(cluster: Cluster, accept: str, version: str) -> None:
    apis, headers = get(cluster, "/apis", accept)
    assert headers["Content-Type"] == f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    assert apis["kind"] == "APIGroupDiscoveryList" and apis["apiVersion"] == f"apidiscovery.k8s.io/{version}"
    items = {i["metadata"]["name"]: i for i in apis["items"]}
    cdi = items["cdi.kubevirt.io"]
    assert cdi["versions"][0]["version"] == "v1beta1"  # the preferred version comes first
    v1beta1 = next(v for v in cdi["versions"] if v["version"] == "v1beta1")
    assert v1beta1["freshness"] == "Current"
    dv = next(r for r in v1beta1["resources"] if r["resource"] == "datavolumes")
    assert dv["responseKind"] == {"group": "cdi.kubevirt.io", "version": "v1beta1", "kind": "DataVolume"}
    assert dv["scope"] == "Namespaced" and dv["singularResource"] == "datavolume"
    assert dv["shortNames"] == ["dv", "dvs"] and dv["categories"] == ["all"]
    assert set(dv["verbs"]) == CRUD_VERBS
    status_sub = next(s for s in dv["subresources"] if s["subresource"] == "status")
    assert set(status_sub["verbs"]) == {"get", "patch", "update"}
    assert status_sub["responseKind"]["kind"] == "DataVolume"

    core, headers = get(cluster, "/api", accept)
    assert core["kind"] == "APIGroupDiscoveryList"
    assert len(core["items"]) == 1 and core["items"][0]["metadata"].get("name", "") == ""
    pods = next(r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert {s["subresource"] for s in pods["subresources"]} >= {"status", "log"}


def test_plain_json_accept_gets_legacy_discovery(cluster: Cluster) -> None:
    apis, headers = get(cluster, "/apis", "application/json")
    assert apis["kind"] == "APIGroupList"
    assert headers["Content-Type"].startswith("application/json")


def test_kubectl_api_resources(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources", "--api-group=cdi.kubevirt.io", "-o", "wide").stdout
    line = next(raw for raw in out.splitlines() if raw.startswith("datavolumes "))
    assert "dv,dvs" in line and "cdi.kubevirt.io/v1beta1" in line and "DataVolume" in line


def test_openapi_v3_index_and_group_version_document(cluster: Cluster) -> None:
    index, _ = get(cluster, "/openapi/v3")
    paths = index["paths"]
    for gv in ("api/v1", "apis/cdi.kubevirt.io/v1beta1", "apis/apiextensions.k8s.io/v1"):
        assert gv in paths, gv
        assert paths[gv]["serverRelativeURL"].startswith(f"/openapi/v3/{gv}?hash=")
    doc, _ = get(cluster, paths["apis/cdi.kubevirt.io/v1beta1"]["serverRelativeURL"])
    assert doc["openapi"].startswith("3.")
    item = doc["paths"]["/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes/{name}"]
    patch_op = item["patch"]
    assert patch_op["x-kubernetes-group-version-kind"] == {"group": "cdi.kubevirt.io", "version": "v1beta1",
                                                           "kind": "DataVolume"}
    params = {p["name"] for p in patch_op.get("parameters", []) + item.get("parameters", [])}
    assert "fieldValidation" in params
    core, _ = get(cluster, "/openapi/v3/api/v1")
    ns_patch = core["paths"]["/api/v1/namespaces/{name}"]["patch"]
    assert ns_patch["x-kubernetes-group-version-kind"]["kind"] == "Namespace"
    status, body, _ = cluster.request("GET", "/openapi/v3/apis/nothing.example.com/v1")
    assert status == 404


def test_kubectl_create_with_default_validation_works(cluster: Cluster) -> None:
    """kubectl's default validation needs the OpenAPI v3 documents above."""
    manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: openapi-check\n  namespace: default\n"
                "data:\n  a: b\n")
    result = cluster.kubectl("create", "-f", "-", input=manifest)
    assert "configmap/openapi-check created" in result.stdout
    changed = manifest.replace("a: b", "a: c")
    result = cluster.kubectl("apply", "--server-side", "-f", "-", input=changed, check=False)
    assert result.returncode != 0
    assert 'conflict with "kubectl-create" using v1: .data.a' in result.stderr
    result = cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=changed)
    assert "configmap/openapi-check serverside-applied" in result.stdout
