"""ownerReference garbage collection: background, foreground, orphan, dangling references."""

from __future__ import annotations

import uuid

from pycdi.cluster.control import ControlPlane

from .conftest import Cluster, owner_ref


async def test_background_deletes_dependents_of_a_deleted_owner(
    cluster: Cluster, plane: ControlPlane
) -> None:
    await cluster.namespace("gc")
    owner = await cluster.configmap("gc", "owner")
    other = await cluster.configmap("gc", "other")
    await cluster.configmap("gc", "child", ownerReferences=[owner_ref(owner)])
    await cluster.configmap("gc", "shared", ownerReferences=[owner_ref(owner), owner_ref(other)])
    await cluster.create(
        "",
        "secrets",
        "gc",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "grandchild",
                "ownerReferences": [
                    owner_ref(await cluster.wait_for(lambda: cluster.get("", "configmaps", "gc", "child")))
                ],
            },
        },
    )

    await cluster.delete("", "configmaps", "gc", "owner")

    await cluster.wait_for(lambda: cluster.get("", "configmaps", "gc", "child") is None)
    await cluster.wait_for(lambda: cluster.get("", "secrets", "gc", "grandchild") is None)
    shared = await cluster.wait_for(
        lambda: (
            (s := cluster.get("", "configmaps", "gc", "shared"))
            and len(s["metadata"]["ownerReferences"]) == 1
            and s
        )
    )
    assert shared["metadata"]["ownerReferences"] == [owner_ref(other)]


async def test_a_reference_to_an_owner_that_never_existed_is_collected(
    cluster: Cluster, plane: ControlPlane
) -> None:
    await cluster.namespace("gc")
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    await cluster.configmap("gc", "orphaned", ownerReferences=[ghost])
    await cluster.wait_for(lambda: cluster.get("", "configmaps", "gc", "orphaned") is None)


async def test_owner_in_another_namespace_counts_as_absent(cluster: Cluster, plane: ControlPlane) -> None:
    await cluster.namespace("a")
    await cluster.namespace("b")
    owner = await cluster.configmap("a", "owner")
    await cluster.configmap("b", "dep", ownerReferences=[owner_ref(owner)])
    await cluster.wait_for(lambda: cluster.get("", "configmaps", "b", "dep") is None)
    assert cluster.get("", "configmaps", "a", "owner") is not None


async def test_cluster_scoped_dependent_of_cluster_scoped_owner(
    cluster: Cluster, plane: ControlPlane
) -> None:
    owner = await cluster.namespace("owner-ns")
    await cluster.create(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "owned", "ownerReferences": [owner_ref(owner)]},
            "rules": [],
        },
    )
    await cluster.delete("", "namespaces", "", "owner-ns")
    await cluster.wait_for(
        lambda: cluster.get("rbac.authorization.k8s.io", "clusterroles", "", "owned") is None
    )


async def test_foreground_waits_for_blocking_dependents(cluster: Cluster, plane: ControlPlane) -> None:
    await cluster.namespace("fg")
    owner = await cluster.configmap("fg", "owner")
    await cluster.configmap(
        "fg", "blocker", ownerReferences=[owner_ref(owner, block=True)], finalizers=["example.com/hold"]
    )
    await cluster.configmap("fg", "loose", ownerReferences=[owner_ref(owner)])

    deleted = await cluster.delete("", "configmaps", "fg", "owner", {"propagationPolicy": "Foreground"})
    assert "foregroundDeletion" in deleted["metadata"]["finalizers"]

    await cluster.wait_for(lambda: cluster.get("", "configmaps", "fg", "loose") is None)
    blocker = await cluster.wait_for(
        lambda: (
            (b := cluster.get("", "configmaps", "fg", "blocker"))
            and b["metadata"].get("deletionTimestamp")
            and b
        )
    )
    assert blocker["metadata"]["finalizers"] == ["example.com/hold"]
    still = cluster.get("", "configmaps", "fg", "owner")
    assert still is not None and still["metadata"]["finalizers"] == ["foregroundDeletion"]

    await cluster.service.remove_finalizer(
        cluster.info("", "configmaps"), "fg", "blocker", "example.com/hold"
    )
    await cluster.wait_for(lambda: cluster.get("", "configmaps", "fg", "owner") is None)


async def test_foreground_propagates_down_the_tree(cluster: Cluster, plane: ControlPlane) -> None:
    await cluster.namespace("fg")
    root = await cluster.configmap("fg", "root")
    middle = await cluster.configmap("fg", "middle", ownerReferences=[owner_ref(root, block=True)])
    await cluster.configmap(
        "fg", "leaf", ownerReferences=[owner_ref(middle, block=True)], finalizers=["example.com/hold"]
    )
    await cluster.delete("", "configmaps", "fg", "root", {"propagationPolicy": "Foreground"})

    mid = await cluster.wait_for(
        lambda: (
            (m := cluster.get("", "configmaps", "fg", "middle"))
            and m["metadata"].get("deletionTimestamp")
            and m
        )
    )
    assert mid["metadata"]["finalizers"] == ["foregroundDeletion"]
    await cluster.wait_for(
        lambda: (
            (cluster.get("", "configmaps", "fg", "leaf") or {}).get("metadata", {}).get("deletionTimestamp")
        )
    )
    assert cluster.get("", "configmaps", "fg", "root") is not None

    await cluster.service.remove_finalizer(cluster.info("", "configmaps"), "fg", "leaf", "example.com/hold")
    await cluster.wait_for(lambda: cluster.get("", "configmaps", "fg", "root") is None)
    assert cluster.get("", "configmaps", "fg", "middle") is None


async def test_orphan_keeps_dependents_and_strips_the_reference(
    cluster: Cluster, plane: ControlPlane
) -> None:
    await cluster.namespace("or")
    owner = await cluster.configmap("or", "owner")
    other = await cluster.configmap("or", "other")
    await cluster.configmap("or", "dep", ownerReferences=[owner_ref(owner, block=True)])
    await cluster.configmap("or", "dep2", ownerReferences=[owner_ref(owner), owner_ref(other)])

    await cluster.delete("", "configmaps", "or", "owner", {"propagationPolicy": "Orphan"})

    await cluster.wait_for(lambda: cluster.get("", "configmaps", "or", "owner") is None)
    dep = cluster.get("", "configmaps", "or", "dep")
    assert dep is not None and "ownerReferences" not in dep["metadata"]
    dep2 = cluster.get("", "configmaps", "or", "dep2")
    assert dep2 is not None and dep2["metadata"]["ownerReferences"] == [owner_ref(other)]


async def test_owner_deleted_while_stopped_is_collected_on_start(cluster: Cluster) -> None:
    await cluster.namespace("late")
    owner = await cluster.configmap("late", "owner")
    await cluster.configmap("late", "dep", ownerReferences=[owner_ref(owner)])
    await cluster.delete("", "configmaps", "late", "owner")
    plane = ControlPlane(cluster.service, b"ca")
    await plane.start()
    try:
        await cluster.wait_for(lambda: cluster.get("", "configmaps", "late", "dep") is None)
    finally:
        await plane.stop()
