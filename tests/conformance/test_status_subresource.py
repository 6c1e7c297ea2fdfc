"""The status subresource: main-resource writes ignore status, /status writes ignore the rest."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.test_crd import install_crd, widget, widget_crd
from tests.conformance.test_watch import new_namespace
from tests.support.cluster import Cluster

Obj = dict[str, Any]
GROUP = "status.example.com"
PLAIN_GROUP = "nostatus.example.com"
MERGE = "application/merge-patch+json"


@pytest.fixture(scope="module")
def widgets(cluster: Cluster) -> str:
    install_crd(cluster, widget_crd(GROUP))
    install_crd(cluster, widget_crd(PLAIN_GROUP, status_subresource=False))
    return GROUP


def make(cluster: Cluster, group: str = GROUP) -> tuple[str, Obj]:
    ns = new_namespace(cluster, "status")
    path = f"/apis/{group}/v1/namespaces/{ns}/widgets"
    body = widget("w", {"size": 1}, group=group)
    body["status"] = {"phase": "FromCreate"}
    status, created, _ = cluster.request("POST", path, body)
    assert status == 201, created
    return f"{path}/w", created


def test_create_ignores_status(cluster: Cluster, widgets: str) -> None:
    _, created = make(cluster)
    assert "status" not in created or created["status"] in ({}, None)


def test_main_resource_writes_ignore_status(cluster: Cluster, widgets: str) -> None:
    path, created = make(cluster)
    status, body, _ = cluster.request("PATCH", path, {"spec": {"size": 2}, "status": {"phase": "Sneaky"}},
                                      content_type=MERGE)
    assert status == 200, body
    assert body["spec"]["size"] == 2 and (body.get("status") or {}).get("phase") is None
    put = dict(body, status={"phase": "AlsoSneaky"}, spec={"size": 3})
    status, body, _ = cluster.request("PUT", path, put)
    assert status == 200, body
    assert body["spec"]["size"] == 3 and (body.get("status") or {}).get("phase") is None


def test_status_writes_ignore_spec_and_get_status_works(cluster: Cluster, widgets: str) -> None:
    path, created = make(cluster)
    status, body, _ = cluster.request("PATCH", f"{path}/status",
                                      {"spec": {"size": 9}, "status": {"phase": "Ready", "observedGeneration": 1}},
                                      content_type=MERGE)
    assert status == 200, body
    assert body["status"] == {"phase": "Ready", "observedGeneration": 1}
    assert body["spec"]["size"] == 1
    assert body["metadata"]["generation"] == created["metadata"]["generation"]

    status, got, _ = cluster.request("GET", f"{path}/status")
    assert status == 200
    assert got["kind"] == "Widget" and got["status"]["phase"] == "Ready" and got["spec"]["size"] == 1

    put = dict(got, spec={"size": 7}, status={"phase": "Done"})
    status, body, _ = cluster.request("PUT", f"{path}/status", put)
    assert status == 200, body
    assert body["status"]["phase"] == "Done" and body["spec"]["size"] == 1
    # A stale resourceVersion on /status conflicts like any update.
    status, body, _ = cluster.request("PUT", f"{path}/status", put)
    assert status == 409 and body["reason"] == "Conflict"


def test_status_write_ignores_labels_but_main_write_keeps_status(cluster: Cluster, widgets: str) -> None:
    path, _ = make(cluster)
    cluster.request("PATCH", f"{path}/status", {"status": {"phase": "Ready"}}, content_type=MERGE)
    status, body, _ = cluster.request("PATCH", f"{path}/status", {"metadata": {"labels": {"via": "status"}},
                                                                  "status": {"phase": "Ready2"}},
                                      content_type=MERGE)
    assert status == 200, body
    # kube's status strategies reset everything but status (labels and annotations included for CRs).
    assert "via" not in (body["metadata"].get("labels") or {})
    status, body, _ = cluster.request("PATCH", path, {"metadata": {"labels": {"via": "main"}}}, content_type=MERGE)
    assert status == 200
    assert body["metadata"]["labels"] == {"via": "main"} and body["status"]["phase"] == "Ready2"


def test_status_validation_applies_to_status_writes(cluster: Cluster, widgets: str) -> None:
    path, _ = make(cluster)
    status, body, _ = cluster.request("PATCH", f"{path}/status", {"status": {"observedGeneration": "one"}},
                                      content_type=MERGE)
    assert status == 422, body
    assert body["details"]["causes"][0]["field"] == "status.observedGeneration"


def test_without_the_subresource_status_is_part_of_the_object(cluster: Cluster, widgets: str) -> None:
    path, created = make(cluster, PLAIN_GROUP)
    assert created["status"] == {"phase": "FromCreate"}
    status, body, _ = cluster.request("PATCH", path, {"status": {"phase": "Changed"}}, content_type=MERGE)
    assert status == 200 and body["status"]["phase"] == "Changed"
    # ... and a status change counts as a change of the object: generation moves.
    assert body["metadata"]["generation"] == 2
    status, body, _ = cluster.request("GET", f"{path}/status")
    assert status == 404, body
    status, listing, _ = cluster.request("GET", f"/apis/{PLAIN_GROUP}/v1")
    assert [r["name"] for r in listing["resources"]] == ["widgets"]


def test_builtin_pod_status_subresource(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "status")
    path = f"/api/v1/namespaces/{ns}/pods"
    status, pod, _ = cluster.request("POST", path, {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "example.invalid/i:1"}]}, "status": {"phase": "Running"}})
    assert status == 201, pod
    assert pod["status"].get("phase") in (None, "Pending")
    status, body, _ = cluster.request("PATCH", f"{path}/p/status", {"status": {"phase": "Running"},
                                                                    "metadata": {"labels": {"x": "y"}}},
                                      content_type=MERGE)
    assert status == 200, body
    assert body["status"]["phase"] == "Running"
    status, body, _ = cluster.request("PATCH", f"{path}/p", {"status": {"phase": "Failed"}}, content_type=MERGE)
    assert status == 200
    assert body["status"]["phase"] == "Running"
    status, got, _ = cluster.request("GET", f"{path}/p/status")
    assert status == 200 and got["status"]["phase"] == "Running"


def test_kubectl_patch_subresource_status(cluster: Cluster, widgets: str) -> None:
    path, _ = make(cluster)
    ns = path.split("/")[5]
    cluster.kubectl("patch", f"widgets.{GROUP}", "w", "-n", ns, "--subresource=status", "--type=merge",
                    "-p", '{"status":{"phase":"ViaKubectl"}}')
    _, got, _ = cluster.request("GET", path)
    assert got["status"]["phase"] == "ViaKubectl"
