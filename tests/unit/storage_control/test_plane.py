"""The storage loops against a real store: binding, provisioning, clone, reclaim, protection, expansion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pycdi.cluster.apiserver import errors
from pycdi.cluster.storage.plane import StoragePlane

from .conftest import NODE, StorageCluster

Storage = tuple[StorageCluster, StoragePlane]


def claim(name: str, size: str = "1Mi", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}}


def volume(name: str, size: str, path: Path, **spec: Any) -> dict[str, Any]:
    labels = spec.pop("labels", {})
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels},
            "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": size}, "hostPath": {"path": str(path)},
                     "storageClassName": "manual", "persistentVolumeReclaimPolicy": "Retain", **spec}}


async def storage_class(c: StorageCluster, name: str, **fields: Any) -> None:
    await c.create("storage.k8s.io", "storageclasses", "", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
        "provisioner": "kubevirt.io/hostpath-provisioner", **fields})


def phase(obj: dict[str, Any] | None) -> str | None:
    value = (obj or {}).get("status", {}).get("phase")
    return None if value is None else str(value)


async def test_static_binding_by_selector_and_size(storage: Storage, tmp_path: Path) -> None:
    c, _ = storage
    await c.create("", "persistentvolumes", "", volume("big", "10Gi", tmp_path, labels={"node": NODE}))
    await c.create("", "persistentvolumes", "", volume("fit", "2Gi", tmp_path, labels={"node": NODE}))
    await c.create("", "persistentvolumes", "", volume("other", "2Gi", tmp_path))
    await c.wait_for(lambda: all(phase(c.pv(n)) == "Available" for n in ("big", "fit", "other")))
    await c.create("", "persistentvolumeclaims", "ns", claim(
        "a", "1Gi", storageClassName="manual", selector={"matchLabels": {"node": NODE}}))
    bound = await c.wait_for(lambda: phase(c.pvc("ns", "a")) == "Bound" and c.pvc("ns", "a"))
    assert bound["spec"]["volumeName"] == "fit"
    assert bound["status"]["capacity"] == {"storage": "2Gi"}
    pv = c.pv("fit")
    assert pv is not None and pv["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
    await c.wait_for(lambda: phase(c.pv("fit")) == "Bound")
    assert phase(c.pv("other")) == "Available"


async def test_default_class_admission_and_dynamic_provisioning(storage: Storage) -> None:
    c, _ = storage
    await storage_class(c, "local", metadata={"name": "local", "annotations": {
        "storageclass.kubernetes.io/is-default-class": "true"}})
    created = await c.create("", "persistentvolumeclaims", "ns", claim("d"))
    assert created["spec"]["storageClassName"] == "local"
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    bound = await c.wait_for(lambda: phase(c.pvc("ns", "d")) == "Bound" and c.pvc("ns", "d"))
    pv = c.pv(bound["spec"]["volumeName"])
    assert pv is not None and pv["metadata"]["name"] == f"pvc-{bound['metadata']['uid']}"
    assert Path(pv["spec"]["hostPath"]["path"]).parent == c.data_dir / "volumes"
    reasons = [r for r, _ in c.events("ns", "d")]
    assert {"ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} <= set(reasons)


async def test_clone_copies_and_then_releases_its_source(storage: Storage) -> None:
    c, _ = storage
    await storage_class(c, "local")
    await c.create("", "persistentvolumeclaims", "ns", claim("src", storageClassName="local"))
    src = await c.wait_for(lambda: phase(c.pvc("ns", "src")) == "Bound" and c.pvc("ns", "src"))
    source_dir = Path(c.pv(src["spec"]["volumeName"])["spec"]["hostPath"]["path"])  # type: ignore[index]
    (source_dir / "disk.img").write_bytes(b"payload")
    created = await c.create("", "persistentvolumeclaims", "ns", claim(
        "copy", storageClassName="local", dataSource={"kind": "PersistentVolumeClaim", "name": "src"}))
    bound = await c.wait_for(lambda: phase(c.pvc("ns", "copy")) == "Bound" and c.pvc("ns", "copy"))
    target = c.data_dir / "volumes" / f"pvc-{created['metadata']['uid']}"
    assert (target / "disk.img").read_bytes() == b"payload"
    assert bound["spec"]["volumeName"] == target.name
    protection = "provisioner.storage.kubernetes.io/cloning-protection"
    source = await c.wait_for(lambda: protection not in (c.pvc("ns", "src") or {}).get("metadata", {}).get(
        "finalizers", []) and c.pvc("ns", "src"))
    assert source["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]


async def test_leftover_target_is_replaced(storage: Storage) -> None:
    from pycdi.cluster.storage import hostpathprovisioner as hpp
    from pycdi.cluster.storage.pools import StoragePool

    pool = StoragePool("p", storage[0].data_dir / "pool")
    (pool.path / "vol").mkdir(parents=True)
    (pool.path / "vol" / "junk").write_text("half a copy")
    made = hpp.create(pool, "vol", "Filesystem", 1024)
    assert made.kind == "dir" and list(made.data.iterdir()) == []


async def test_released_volumes_follow_their_reclaim_policy(storage: Storage, tmp_path: Path) -> None:
    c, _ = storage
    await storage_class(c, "keep", reclaimPolicy="Retain")
    await storage_class(c, "drop", reclaimPolicy="Delete")
    for name in ("keep", "drop"):
        await c.create("", "persistentvolumeclaims", "ns", claim(name, storageClassName=name))
    keep = await c.wait_for(lambda: phase(c.pvc("ns", "keep")) == "Bound" and c.pvc("ns", "keep"))
    drop = await c.wait_for(lambda: phase(c.pvc("ns", "drop")) == "Bound" and c.pvc("ns", "drop"))
    drop_dir = Path(c.pv(drop["spec"]["volumeName"])["spec"]["hostPath"]["path"])  # type: ignore[index]
    keep_dir = Path(c.pv(keep["spec"]["volumeName"])["spec"]["hostPath"]["path"])  # type: ignore[index]
    for name in ("keep", "drop"):
        await c.delete("", "persistentvolumeclaims", "ns", name)
    await c.wait_for(lambda: c.pv(drop["spec"]["volumeName"]) is None)
    assert not drop_dir.exists()
    await c.wait_for(lambda: phase(c.pv(keep["spec"]["volumeName"])) == "Released")
    assert keep_dir.is_dir()


async def test_claim_used_by_a_pod_keeps_its_finalizer(storage: Storage) -> None:
    c, _ = storage
    await storage_class(c, "local")
    await c.create("", "persistentvolumeclaims", "ns", claim("used", storageClassName="local"))
    await c.wait_for(lambda: phase(c.pvc("ns", "used")) == "Bound")
    await c.create("", "pods", "ns", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "x"}],
        "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "used"}}]}})
    await c.delete("", "persistentvolumeclaims", "ns", "used")
    pending = c.pvc("ns", "used")
    assert pending is not None and pending["metadata"]["deletionTimestamp"]
    await c.delete("", "pods", "ns", "p", {"gracePeriodSeconds": 0})
    await c.wait_for(lambda: c.pvc("ns", "used") is None)


async def test_expansion_admission_and_growth(storage: Storage) -> None:
    c, _ = storage
    await storage_class(c, "grow", allowVolumeExpansion=True)
    await storage_class(c, "fixed")
    for name in ("grow", "fixed"):
        await c.create("", "persistentvolumeclaims", "ns", claim(name, storageClassName=name, volumeMode="Block"))
    for name in ("grow", "fixed"):
        await c.wait_for(lambda n=name: phase(c.pvc("ns", n)) == "Bound")  # type: ignore[misc]
    info = c.info("", "persistentvolumeclaims")
    fixed = c.pvc("ns", "fixed")
    assert fixed is not None
    fixed["spec"]["resources"]["requests"]["storage"] = "2Mi"
    with pytest.raises(errors.APIError) as refused:
        await c.service.update(info, "ns", "fixed", fixed, c.ctx)
    assert refused.value.code == 403
    assert "only dynamically provisioned pvc can be resized" in refused.value.message
    grow = c.pvc("ns", "grow")
    assert grow is not None
    grow["spec"]["resources"]["requests"]["storage"] = "3Mi"
    await c.service.update(info, "ns", "grow", grow, c.ctx)
    done = await c.wait_for(lambda: (c.pvc("ns", "grow") or {}).get("status", {}).get("capacity") == {
        "storage": "3Mi"} and c.pvc("ns", "grow"))
    pv = c.pv(done["spec"]["volumeName"])
    assert pv is not None and pv["spec"]["capacity"] == {"storage": "3Mi"}
    assert Path(pv["metadata"]["annotations"]["pycdi.io/block-backing"]).stat().st_size == 3 * 1024 * 1024
    assert ("VolumeResizeSuccessful", "Resize volume succeeded") in c.events("ns", "grow")


async def test_wait_for_first_consumer_waits_for_the_selected_node(storage: Storage) -> None:
    c, _ = storage
    await storage_class(c, "late", volumeBindingMode="WaitForFirstConsumer")
    await c.create("", "persistentvolumeclaims", "ns", claim("late", storageClassName="late"))
    await c.wait_for(lambda: ("WaitForFirstConsumer", "waiting for first consumer to be created before binding")
                     in c.events("ns", "late"))
    pending = c.pvc("ns", "late")
    assert pending is not None and phase(pending) == "Pending"
    # What the scheduler does when a pod using the claim lands on this node.
    pending["metadata"].setdefault("annotations", {})["volume.kubernetes.io/selected-node"] = NODE
    await c.service.update(c.info("", "persistentvolumeclaims"), "ns", "late", pending, c.ctx)
    await c.wait_for(lambda: phase(c.pvc("ns", "late")) == "Bound")
