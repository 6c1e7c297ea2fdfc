"""List semantics: label and field selectors, limit/continue paging, remainingItemCount, list RV."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from tests.conformance.test_watch import new_namespace
from tests.support.cluster import Cluster

Obj = dict[str, Any]

LABELS = {
    "a": {"env": "prod", "tier": "web"},
    "b": {"env": "dev", "tier": "web"},
    "c": {"env": "test"},
    "d": {},
}


@pytest.fixture(scope="module")
def labelled(cluster: Cluster) -> str:
    ns = new_namespace(cluster, "list")
    for name, labels in LABELS.items():
        status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/secrets",
                                          {"metadata": {"name": name, "labels": labels}})
        assert status == 201, body
    return ns


def names(cluster: Cluster, path: str, **params: str) -> list[str]:
    status, body, _ = cluster.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
    assert status == 200, body
    return sorted(i["metadata"]["name"] for i in body["items"])


@pytest.mark.parametrize(("selector", "expected"), [
    ("env=prod", ["a"]),
    ("env==prod", ["a"]),
    ("env!=prod", ["b", "c", "d"]),
    ("env in (prod,dev)", ["a", "b"]),
    ("env notin (prod,dev)", ["c", "d"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c", "d"]),
    ("tier=web,env!=dev", ["a"]),
    ("env in (test),!tier", ["c"]),
    ("", ["a", "b", "c", "d"]),
])
def test_label_selector_operators(cluster: Cluster, labelled: str, selector: str, expected: list[str]) -> None:
    assert names(cluster, f"/api/v1/namespaces/{labelled}/secrets", labelSelector=selector) == expected


@pytest.mark.parametrize("selector", ["env in", "env=(a", "=x", "a b", "env in (a,b", "!!x", "a=b=c"])
def test_bad_label_selector_is_400(cluster: Cluster, labelled: str, selector: str) -> None:
    status, body, _ = cluster.request(
        "GET", f"/api/v1/namespaces/{labelled}/secrets?{urllib.parse.urlencode({'labelSelector': selector})}")
    assert status == 400, (selector, body)
    assert body["kind"] == "Status" and body["reason"] == "BadRequest" and body["code"] == 400


def test_field_selector_on_name_and_namespace(cluster: Cluster, labelled: str) -> None:
    path = f"/api/v1/namespaces/{labelled}/secrets"
    assert names(cluster, path, fieldSelector="metadata.name=b") == ["b"]
    assert names(cluster, path, fieldSelector="metadata.name!=b") == ["a", "c", "d"]
    assert names(cluster, path, fieldSelector="metadata.name==c,metadata.namespace=" + labelled) == ["c"]
    assert names(cluster, "/api/v1/secrets", fieldSelector=f"metadata.namespace={labelled}") == ["a", "b", "c", "d"]
    # Field and label selectors combine.
    assert names(cluster, path, fieldSelector="metadata.name!=a", labelSelector="tier") == ["b"]


def test_unsupported_field_label_is_400(cluster: Cluster, labelled: str) -> None:
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{labelled}/secrets?fieldSelector=spec.color%3Dred")
    assert status == 400
    assert body["kind"] == "Status" and body["reason"] == "BadRequest"
    assert body["message"] == "field label not supported: spec.color"
    # spec.nodeName is a pod field, not a secret field.
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{labelled}/secrets?fieldSelector=spec.nodeName%3Dx")
    assert status == 400 and body["message"] == "field label not supported: spec.nodeName"


def test_event_involved_object_field_selectors(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "list")
    for i, (target, kind) in enumerate([("pvc-1", "PersistentVolumeClaim"), ("pvc-2", "PersistentVolumeClaim"),
                                        ("pvc-1", "Pod")]):
        event = {"metadata": {"name": f"ev{i}"}, "reason": "Test", "message": "m", "type": "Normal",
                 "involvedObject": {"kind": kind, "name": target, "namespace": ns, "uid": f"uid-{i}"}}
        status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/events", event)
        assert status == 201, body
    path = f"/api/v1/namespaces/{ns}/events"
    assert names(cluster, path, fieldSelector="involvedObject.name=pvc-1") == ["ev0", "ev2"]
    assert names(cluster, path, fieldSelector="involvedObject.name=pvc-1,involvedObject.kind=Pod") == ["ev2"]
    # What kubectl describe sends.
    assert names(cluster, path, fieldSelector=f"involvedObject.name=pvc-2,involvedObject.namespace={ns},"
                                              "involvedObject.kind=PersistentVolumeClaim,involvedObject.uid=uid-1") \
        == ["ev1"]
    assert names(cluster, path, fieldSelector="reason=Test,type=Normal") == ["ev0", "ev1", "ev2"]


def test_pod_node_name_and_phase_field_selectors(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "list")
    for name, node in (("p1", "node-a"), ("p2", "node-b"), ("p3", None)):
        spec: Obj = {"containers": [{"name": "c", "image": "example.invalid/img:1"}]}
        if node:
            spec["nodeName"] = node
        else:
            spec["schedulerName"] = "no-such-scheduler"  # stays unscheduled: the embedded scheduler skips it
        status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods",
                                          {"metadata": {"name": name}, "spec": spec})
        assert status == 201, body
    status, body, _ = cluster.request("PATCH", f"/api/v1/namespaces/{ns}/pods/p2/status",
                                      {"status": {"phase": "Running"}},
                                      content_type="application/merge-patch+json")
    assert status == 200, body
    path = f"/api/v1/namespaces/{ns}/pods"
    assert names(cluster, path, fieldSelector="spec.nodeName=node-a") == ["p1"]
    assert names(cluster, path, fieldSelector="spec.nodeName=") == ["p3"]
    assert names(cluster, path, fieldSelector="status.phase=Running") == ["p2"]
    assert names(cluster, path, fieldSelector="status.phase!=Running") == ["p1", "p3"]


def page_all(cluster: Cluster, path: str, limit: int, on_first_page: Any = None) -> tuple[list[Obj], int]:
    """Follow continue tokens to the end; the pages' metadata and the number of requests."""
    metas: list[Obj] = []
    token = ""
    while True:
        query = {"limit": str(limit)}
        if token:
            query["continue"] = token
        status, body, _ = cluster.request("GET", f"{path}?{urllib.parse.urlencode(query)}")
        assert status == 200, body
        assert len(body["items"]) <= limit
        metas.append({**body["metadata"], "names": [i["metadata"]["name"] for i in body["items"]]})
        if on_first_page is not None and len(metas) == 1:
            on_first_page()
        token = body["metadata"].get("continue", "")
        if not token:
            return metas, len(metas)


def make_secrets(cluster: Cluster, ns: str, total: int) -> str:
    path = f"/api/v1/namespaces/{ns}/secrets"
    for i in range(total):
        status, _, _ = cluster.request("POST", path, {"metadata": {"name": f"s{i:02}"}})
        assert status == 201
    return path


def test_limit_and_continue_page_through_everything_once(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "page")
    total = 11
    path = make_secrets(cluster, ns, total)
    pages, requests = page_all(cluster, path, 3)
    seen = [n for p in pages for n in p["names"]]
    assert seen == [f"s{i:02}" for i in range(total)]
    assert requests == 4
    done = 0
    for page in pages[:-1]:
        done += len(page["names"])
        assert page["remainingItemCount"] == total - done
    assert "remainingItemCount" not in pages[-1]


def test_continued_pages_are_a_snapshot_of_the_first_page_rv(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "page")
    path = make_secrets(cluster, ns, 6)
    pages, _ = page_all(cluster, path, 2, lambda: cluster.request("POST", path, {"metadata": {"name": "s99"}}))
    assert [n for p in pages for n in p["names"]] == [f"s{i:02}" for i in range(6)]
    assert len({p["resourceVersion"] for p in pages}) == 1
    assert pages[0]["remainingItemCount"] == 4


def test_limit_larger_than_collection_has_no_continue(cluster: Cluster, labelled: str) -> None:
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{labelled}/secrets?limit=100")
    assert status == 200
    assert len(body["items"]) == 4
    assert not body["metadata"].get("continue") and "remainingItemCount" not in body["metadata"]


def test_paging_with_a_label_selector(cluster: Cluster, labelled: str) -> None:
    path = f"/api/v1/namespaces/{labelled}/secrets"
    status, first, _ = cluster.request("GET", f"{path}?limit=1&labelSelector=tier")
    assert status == 200 and [i["metadata"]["name"] for i in first["items"]] == ["a"]
    assert "remainingItemCount" not in first["metadata"]  # unknown with a selector, as in kube
    token = first["metadata"]["continue"]
    status, second, _ = cluster.request(
        "GET", f"{path}?limit=1&labelSelector=tier&continue={urllib.parse.quote(token)}")
    assert status == 200 and [i["metadata"]["name"] for i in second["items"]] == ["b"]
    # kube may hand out one more token while unfiltered keys remain; that last page is then empty.
    token = second["metadata"].get("continue", "")
    if token:
        status, third, _ = cluster.request(
            "GET", f"{path}?limit=1&labelSelector=tier&continue={urllib.parse.quote(token)}")
        assert status == 200 and third["items"] == [] and not third["metadata"].get("continue")


def test_bad_continue_token_is_400(cluster: Cluster, labelled: str) -> None:
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{labelled}/secrets?limit=1&continue=garbage")
    assert status == 400, body
    assert body["reason"] == "BadRequest"


def test_list_shape_and_resource_version(cluster: Cluster, labelled: str) -> None:
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{labelled}/secrets")
    assert status == 200
    assert body["kind"] == "SecretList" and body["apiVersion"] == "v1"
    list_rv = int(body["metadata"]["resourceVersion"])
    assert all(int(i["metadata"]["resourceVersion"]) <= list_rv for i in body["items"])
    # Items carry no kind in kube's list JSON only for typed lists; ours must at least be valid objects.
    assert all(i["metadata"]["namespace"] == labelled for i in body["items"])
    status, cluster_wide, _ = cluster.request("GET", "/api/v1/secrets")
    assert status == 200
    assert {i["metadata"]["name"] for i in cluster_wide["items"] if i["metadata"]["namespace"] == labelled} \
        == set(LABELS)
