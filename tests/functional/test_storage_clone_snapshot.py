"""CSI-style clone and snapshots with the real kubectl: the seed's `pvc-1-clone`, clone rules, snapshot/restore."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.storage import (
    apply,
    get,
    host_path,
    namespace,
    pvc,
    seed_object,
    storage_class,
    unique,
    wait_event,
    wait_phase,
    wait_until,
)

CSI = "kubevirt.io.hostpath-provisioner"
CLONE_PROTECTION = "provisioner.storage.kubernetes.io/cloning-protection"
PAYLOAD = os.urandom(64 * 1024) + b"\0" * 4096 + b"tail"


@pytest.fixture(scope="module")
def csi_cloning(cluster: Cluster) -> str:
    """The seed's class `csi-cloning`, served by our CSI provisioner name."""
    apply(cluster, storage_class("csi-cloning", CSI, reclaimPolicy="Delete", volumeBindingMode="Immediate"))
    return "csi-cloning"


def bound_source(cluster: Cluster, ns: str, name: str, size: str, storage: str, mode: str | None = None) -> Path:
    apply(cluster, pvc(name, size, storage_class=storage, mode=mode), namespace=ns)
    wait_phase(cluster, ns, name)
    path = host_path(cluster, ns, name)
    if mode == "Block":
        with open(path, "r+b") as f:
            f.write(PAYLOAD)
    else:
        (path / "disk.img").write_bytes(PAYLOAD)
        (path / "sub").mkdir()
        (path / "sub" / "note.txt").write_text("hello")
    return path


def test_seed_csi_clone_holds_the_source_bytes(cluster: Cluster, csi_cloning: str) -> None:
    ns = namespace(cluster, "clone")
    # The seed's source is any bound claim of the class; the clone manifest is the seed's, unchanged but for ns.
    bound_source(cluster, ns, "pvc-1", "5Gi", csi_cloning)
    clone = seed_object("PersistentVolumeClaim", "pvc-1-clone")
    clone["metadata"]["namespace"] = ns
    apply(cluster, clone)
    wait_phase(cluster, ns, "pvc-1-clone")
    target = host_path(cluster, ns, "pvc-1-clone")
    assert (target / "disk.img").read_bytes() == PAYLOAD
    assert (target / "sub" / "note.txt").read_text() == "hello"
    assert target != host_path(cluster, ns, "pvc-1")
    wait_event(cluster, ns, "pvc-1-clone", "ProvisioningSucceeded", "Successfully provisioned volume")
    # The cloning-protection finalizer is gone once the copy is done.
    source = wait_until(cluster, "pvc", "pvc-1", ns,
                        lambda p: CLONE_PROTECTION not in p["metadata"].get("finalizers", []))
    assert source["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]


def test_block_clone_and_data_source_ref(cluster: Cluster, csi_cloning: str) -> None:
    ns = namespace(cluster, "bclone")
    source = bound_source(cluster, ns, "src", "8Mi", csi_cloning, mode="Block")
    ref = {"kind": "PersistentVolumeClaim", "name": "src"}
    apply(cluster, pvc("copy", "16Mi", storage_class=csi_cloning, mode="Block", dataSourceRef=ref), namespace=ns)
    wait_phase(cluster, ns, "copy")
    target = host_path(cluster, ns, "copy")
    with open(target, "rb") as f:
        assert f.read(len(PAYLOAD)) == PAYLOAD
    assert target.stat().st_size == 16 * 1024 * 1024  # the bigger claim keeps its size
    assert source.stat().st_size == 8 * 1024 * 1024


@pytest.mark.parametrize("case", ["class", "size", "mode", "missing", "unbound"])
def test_clone_rule_violations_stay_pending_with_the_reason(cluster: Cluster, csi_cloning: str, case: str) -> None:
    ns = namespace(cluster, f"rule-{case}")
    other = unique("other")
    apply(cluster, storage_class(other, CSI))
    bound_source(cluster, ns, "src", "32Mi", csi_cloning)
    source_name, storage, size, mode = "src", csi_cloning, "32Mi", None
    if case == "class":
        storage = other
        expected = (f"the source PVC and destination PVCs must be in the same storage class for cloning.  "
                    f"Source is in {csi_cloning}, but new PVC is in {other}")
    elif case == "size":
        size = "16Mi"
        expected = ("error, new PVC request must be greater than or equal in size to the specified PVC data "
                    "source, requested 16777216 but source is 33554432")
    elif case == "mode":
        mode = "Block"
        expected = ("the source PVC and destination PVCs must have the same volume mode for cloning.  "
                    "Source is Filesystem, but new PVC requested Block")
    elif case == "missing":
        source_name = "nothing"
        expected = 'persistentvolumeclaims "nothing" not found'
    else:
        # A source that cannot bind: itself a clone of a claim that does not exist.
        apply(cluster, pvc("waiting", "32Mi", storage_class=csi_cloning,
                           dataSource={"kind": "PersistentVolumeClaim", "name": "nothing"}), namespace=ns)
        source_name = "waiting"
        expected = "the PVC DataSource waiting must have a status of Bound"
    claim = pvc("clone", size, storage_class=storage, mode=mode,
                dataSource={"kind": "PersistentVolumeClaim", "name": source_name})
    apply(cluster, claim, namespace=ns)
    event = wait_event(cluster, ns, "clone", "ProvisioningFailed", expected)
    assert event["type"] == "Warning"
    assert event["message"].startswith(f'failed to provision volume with StorageClass "{storage}": '
                                       f"error getting handle for DataSource Type PersistentVolumeClaim")
    assert get(cluster, "pvc", "clone", ns)["status"]["phase"] == "Pending"
    assert CLONE_PROTECTION not in get(cluster, "pvc", "src", ns)["metadata"].get("finalizers", [])


def test_clone_waits_for_its_source_to_bind(cluster: Cluster, csi_cloning: str) -> None:
    ns = namespace(cluster, "late")
    claim = pvc("clone", "16Mi", storage_class=csi_cloning, dataSource={"kind": "PersistentVolumeClaim", "name": "src"})
    apply(cluster, claim, namespace=ns)
    wait_event(cluster, ns, "clone", "ProvisioningFailed", 'persistentvolumeclaims "src" not found')
    apply(cluster, pvc("src", "16Mi", storage_class=csi_cloning), namespace=ns)
    wait_phase(cluster, ns, "clone")  # (the source was empty when the clone was taken: nothing to compare)
    assert host_path(cluster, ns, "clone").is_dir()


def snapshot(name: str, claim: str, snapshot_class: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"source": {"persistentVolumeClaimName": claim}}
    if snapshot_class:
        spec["volumeSnapshotClassName"] = snapshot_class
    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "metadata": {"name": name},
            "spec": spec}


def restore(name: str, snap: str, size: str, storage: str, mode: str | None = None) -> dict[str, object]:
    return pvc(name, size, storage_class=storage, mode=mode,
               dataSource={"kind": "VolumeSnapshot", "name": snap, "apiGroup": "snapshot.storage.k8s.io"})


@pytest.mark.parametrize("mode", ["Filesystem", "Block"])
def test_snapshot_and_restore_round_trip(cluster: Cluster, mode: str) -> None:
    ns = namespace(cluster, "snap")
    source = bound_source(cluster, ns, "src", "8Mi", "local", mode=mode)
    apply(cluster, snapshot("snap", "src"), namespace=ns)
    cluster.kubectl("wait", "-n", ns, "volumesnapshot/snap", "--for=jsonpath={.status.readyToUse}=true",
                    "--timeout=60s")
    snap = get(cluster, "volumesnapshot", "snap", ns)
    content_name = snap["status"]["boundVolumeSnapshotContentName"]
    assert content_name == f"snapcontent-{snap['metadata']['uid']}"
    assert snap["spec"]["volumeSnapshotClassName"] == "local-snapshots"  # the default class
    assert snap["status"]["restoreSize"] == "8Mi"
    assert snap["status"]["creationTime"]
    assert set(snap["metadata"]["finalizers"]) == {
        "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection",
        "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"}
    content = get(cluster, "volumesnapshotcontent", content_name)
    assert content["metadata"]["finalizers"] == [
        "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"]
    assert content["spec"]["volumeSnapshotRef"]["uid"] == snap["metadata"]["uid"]
    assert content["status"]["readyToUse"] is True
    handle = Path(content["status"]["snapshotHandle"])
    assert handle.exists() and ".snapshots" in handle.parts
    # The snapshot is a point in time: later writes to the source do not reach it.
    if mode == "Block":
        with open(source, "r+b") as f:
            f.write(b"changed")
    else:
        (source / "disk.img").write_bytes(b"changed")
    apply(cluster, restore("back", "snap", "8Mi", "local", mode), namespace=ns)
    wait_phase(cluster, ns, "back")
    target = host_path(cluster, ns, "back")
    if mode == "Block":
        with open(target, "rb") as f:
            assert f.read(len(PAYLOAD)) == PAYLOAD
    else:
        assert (target / "disk.img").read_bytes() == PAYLOAD
    # Deletion policy Delete: the content and its data go with the snapshot.
    cluster.kubectl("delete", "-n", ns, "volumesnapshot/snap", "--timeout=60s")
    cluster.kubectl("wait", f"volumesnapshotcontent/{content_name}", "--for=delete", "--timeout=60s")
    assert not handle.exists()


def test_retained_snapshot_content_outlives_its_snapshot(cluster: Cluster) -> None:
    ns = namespace(cluster, "retain")
    klass = unique("keep")
    apply(cluster, {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
                    "metadata": {"name": klass}, "driver": CSI, "deletionPolicy": "Retain"})
    bound_source(cluster, ns, "src", "8Mi", "local")
    apply(cluster, snapshot("snap", "src", klass), namespace=ns)
    cluster.kubectl("wait", "-n", ns, "volumesnapshot/snap", "--for=jsonpath={.status.readyToUse}=true",
                    "--timeout=60s")
    content_name = get(cluster, "volumesnapshot", "snap", ns)["status"]["boundVolumeSnapshotContentName"]
    cluster.kubectl("delete", "-n", ns, "volumesnapshot/snap", "--timeout=60s")
    content = get(cluster, "volumesnapshotcontent", content_name)
    assert content["spec"]["deletionPolicy"] == "Retain"
    handle = Path(content["status"]["snapshotHandle"])
    assert (handle / "disk.img").read_bytes() == PAYLOAD
    cluster.kubectl("delete", f"volumesnapshotcontent/{content_name}", "--timeout=60s")
    assert handle.exists()  # Retain: deleting the content object leaves the data


def test_restore_rules(cluster: Cluster) -> None:
    ns = namespace(cluster, "rrules")
    apply(cluster, restore("early", "snap", "8Mi", "local"), namespace=ns)
    wait_event(cluster, ns, "early", "ProvisioningFailed", 'volumesnapshots.snapshot.storage.k8s.io "snap" not found')
    bound_source(cluster, ns, "src", "8Mi", "local")
    apply(cluster, snapshot("snap", "src"), namespace=ns)
    wait_phase(cluster, ns, "early")  # the restore waited for its snapshot
    apply(cluster, restore("small", "snap", "4Mi", "local"), namespace=ns)
    wait_event(cluster, ns, "small", "ProvisioningFailed",
               "requested volume size 4194304 is less than the size 8388608 for the source snapshot snap")
    assert get(cluster, "pvc", "small", ns)["status"]["phase"] == "Pending"
