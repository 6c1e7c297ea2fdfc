"""Namespace lifecycle: content deletion, conditions, finalization."""

from __future__ import annotations

from typing import Any

from pycdi.cluster.control import ControlPlane

from .conftest import Cluster


def _condition(ns: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for cond in ((ns or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return dict(cond)
    return None


async def test_deleting_a_namespace_removes_its_content_then_the_namespace(
    cluster: Cluster, plane: ControlPlane
) -> None:
    await cluster.namespace("doomed")
    await cluster.namespace("kept")
    await cluster.configmap("doomed", "a")
    await cluster.configmap("doomed", "b")
    await cluster.create(
        "",
        "secrets",
        "doomed",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"x": "y"}},
    )
    await cluster.configmap("kept", "a")
    await cluster.wait_for(lambda: cluster.get("", "serviceaccounts", "doomed", "default"))

    deleted = await cluster.delete("", "namespaces", "", "doomed")
    assert deleted["status"]["phase"] == "Terminating"

    await cluster.wait_for(lambda: cluster.get("", "namespaces", "", "doomed") is None)
    for key in ("core/configmaps", "core/secrets", "core/serviceaccounts"):
        assert cluster.store.count(key, "doomed") == 0
    assert cluster.get("", "configmaps", "kept", "a") is not None
    assert cluster.get("", "namespaces", "", "kept") is not None


async def test_an_object_with_a_finalizer_keeps_the_namespace_terminating(
    cluster: Cluster, plane: ControlPlane
) -> None:
    await cluster.namespace("held")
    await cluster.configmap("held", "pinned", finalizers=["example.com/hold"])
    await cluster.configmap("held", "free")
    await cluster.delete("", "namespaces", "", "held")

    ns = await cluster.wait_for(
        lambda: (
            (n := cluster.get("", "namespaces", "", "held"))
            and _condition(n, "NamespaceFinalizersRemaining")
            and n
        )
    )
    assert ns["status"]["phase"] == "Terminating"
    assert _condition(ns, "NamespaceFinalizersRemaining") == {
        "type": "NamespaceFinalizersRemaining",
        "status": "True",
        "lastTransitionTime": _condition(ns, "NamespaceFinalizersRemaining")["lastTransitionTime"],  # type: ignore
        "reason": "SomeFinalizersRemain",
        "message": "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource "
        "instances",
    }
    remaining = _condition(ns, "NamespaceContentRemaining")
    assert remaining is not None and remaining["status"] == "True"
    assert remaining["reason"] == "SomeResourcesRemain"
    assert remaining["message"] == "Some resources are remaining: configmaps. has 1 resource instances"
    discovery = _condition(ns, "NamespaceDeletionDiscoveryFailure")
    assert discovery is not None and discovery["status"] == "False"
    assert discovery["reason"] == "ResourcesDiscovered"
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    pinned = cluster.get("", "configmaps", "held", "pinned")
    assert pinned is not None and pinned["metadata"].get("deletionTimestamp")
    assert cluster.get("", "configmaps", "held", "free") is None

    await cluster.service.remove_finalizer(
        cluster.info("", "configmaps"), "held", "pinned", "example.com/hold"
    )
    await cluster.wait_for(lambda: cluster.get("", "namespaces", "", "held") is None)


async def test_a_namespace_terminating_before_start_is_finished_on_start(cluster: Cluster) -> None:
    await cluster.namespace("old")
    await cluster.configmap("old", "x")
    await cluster.delete("", "namespaces", "", "old")
    plane = ControlPlane(cluster.service, b"ca")
    await plane.start()
    try:
        await cluster.wait_for(lambda: cluster.get("", "namespaces", "", "old") is None)
    finally:
        await plane.stop()


async def test_foreground_namespace_deletion_completes(cluster: Cluster, plane: ControlPlane) -> None:
    await cluster.namespace("fg-ns")
    await cluster.configmap("fg-ns", "x")
    deleted = await cluster.delete("", "namespaces", "", "fg-ns", {"propagationPolicy": "Foreground"})
    assert deleted["metadata"]["finalizers"] == ["foregroundDeletion"]
    await cluster.wait_for(lambda: cluster.get("", "namespaces", "", "fg-ns") is None)
    assert cluster.store.count("core/configmaps", "fg-ns") == 0
