"""Discovery documents: legacy lists, aggregated v2/v2beta1, and Accept negotiation."""

from __future__ import annotations

import pytest

from pycdi.cluster.apiserver import discovery
from pycdi.cluster.apiserver.resources import ResourceInfo

INFOS = [
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
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        True,
        singular="serviceaccount",
        short_names=("sa",),
        subresources=frozenset({"token"}),
    ),
    ResourceInfo(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        singular="namespace",
        subresources=frozenset({"status", "finalize"}),
    ),
    ResourceInfo("cdi.kubevirt.io", "v1alpha1", "datavolumes", "DataVolume", True, custom=True),
    ResourceInfo(
        "cdi.kubevirt.io",
        "v1beta1",
        "datavolumes",
        "DataVolume",
        True,
        singular="datavolume",
        short_names=("dv",),
        categories=("all",),
        subresources=frozenset({"status"}),
        custom=True,
    ),
    ResourceInfo(
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        False,
        verbs=("create",),
        stored=False,
    ),
]


def test_api_versions() -> None:
    assert discovery.api_versions("127.0.0.1:6443") == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    }


def test_group_list_prefers_highest_version() -> None:
    doc = discovery.api_group_list(INFOS)
    assert doc["kind"] == "APIGroupList"
    cdi = next(g for g in doc["groups"] if g["name"] == "cdi.kubevirt.io")
    assert cdi["preferredVersion"] == {"groupVersion": "cdi.kubevirt.io/v1beta1", "version": "v1beta1"}
    assert [v["version"] for v in cdi["versions"]] == ["v1beta1", "v1alpha1"]
    assert all(g["name"] for g in doc["groups"])  # the core group is not listed under /apis
    group = discovery.api_group(INFOS, "cdi.kubevirt.io")
    assert group is not None and group["kind"] == "APIGroup" and group["name"] == "cdi.kubevirt.io"
    assert discovery.api_group(INFOS, "nope.io") is None


@pytest.mark.parametrize(
    "versions, first",
    [
        (["v1alpha1", "v1", "v2beta1", "v1beta2", "v2"], ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1"]),
        (["foo", "v1"], ["v1", "foo"]),
    ],
)
def test_version_priority(versions: list[str], first: list[str]) -> None:
    assert sorted(versions, key=discovery.version_priority) == first


def test_resource_list_with_subresources() -> None:
    doc = discovery.api_resource_list(INFOS, "", "v1")
    assert doc is not None and doc["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["pods"] == {
        "name": "pods",
        "singularName": "pod",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": ["po"],
        "categories": ["all"],
    }
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["pods/log"] == {
        "name": "pods/log",
        "singularName": "",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["get"],
    }
    assert by_name["pods/binding"]["verbs"] == ["create"] and by_name["pods/binding"]["kind"] == "Binding"
    assert by_name["pods/eviction"] == {
        "name": "pods/eviction",
        "singularName": "",
        "namespaced": True,
        "group": "policy",
        "version": "v1",
        "kind": "Eviction",
        "verbs": ["create"],
    }
    assert by_name["serviceaccounts/token"]["group"] == "authentication.k8s.io"
    assert by_name["serviceaccounts/token"]["kind"] == "TokenRequest"
    assert by_name["serviceaccounts/token"]["verbs"] == ["create"]
    assert by_name["namespaces/finalize"]["verbs"] == ["update"]
    assert by_name["namespaces"]["namespaced"] is False
    sar = discovery.api_resource_list(INFOS, "authorization.k8s.io", "v1")
    assert sar is not None and sar["resources"][0]["verbs"] == ["create"]
    assert discovery.api_resource_list(INFOS, "cdi.kubevirt.io", "v9") is None


@pytest.mark.parametrize("version", ["v2", "v2beta1"])
def test_aggregated(version: str) -> None:
    apis = discovery.aggregated_discovery(INFOS, core=False, version=version)
    assert apis["apiVersion"] == f"apidiscovery.k8s.io/{version}"
    assert apis["kind"] == "APIGroupDiscoveryList"
    names = [item["metadata"]["name"] for item in apis["items"]]
    assert sorted(names) == ["authorization.k8s.io", "cdi.kubevirt.io"]
    cdi = apis["items"][names.index("cdi.kubevirt.io")]
    assert [v["version"] for v in cdi["versions"]] == ["v1beta1", "v1alpha1"]
    dv = cdi["versions"][0]["resources"][0]
    assert dv["resource"] == "datavolumes" and dv["scope"] == "Namespaced" and dv["shortNames"] == ["dv"]
    assert dv["responseKind"] == {"group": "cdi.kubevirt.io", "version": "v1beta1", "kind": "DataVolume"}
    assert dv["subresources"] == [
        {
            "subresource": "status",
            "verbs": ["get", "patch", "update"],
            "responseKind": {"group": "cdi.kubevirt.io", "version": "v1beta1", "kind": "DataVolume"},
        }
    ]
    core = discovery.aggregated_discovery(INFOS, core=True, version=version)
    assert len(core["items"]) == 1 and "name" not in core["items"][0]["metadata"]
    pods = next(r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["scope"] == "Namespaced"
    eviction = next(s for s in pods["subresources"] if s["subresource"] == "eviction")
    assert eviction["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    assert discovery.aggregated_content_type(version) == (
        f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    )


KUBECTL_132 = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)
KUBECTL_129 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"


@pytest.mark.parametrize(
    "accept, expected",
    [
        (KUBECTL_132, "v2"),
        (KUBECTL_129, "v2beta1"),
        ("application/json", None),
        ("*/*", None),
        ("", None),
        ("application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", None),
        ("application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", "v2"),
        ("application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", None),
        ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json", None),
    ],
)
def test_discovery_content_type(accept: str, expected: str | None) -> None:
    assert discovery.discovery_content_type(accept) == expected
