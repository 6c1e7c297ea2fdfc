"""DataVolume clones against a real `pycdi up` through kubectl: the seed's clone manifests (into another namespace
with the seed's RBAC, into a Block PV on a loop device, into a labelled local PV), each strategy (csi-clone,
snapshot, host-assisted copy), Block <-> Filesystem for kubevirt content, and the refusals and waits as upstream
words them. Every clone is checked byte for byte against a source written by a real pod."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pycdi.api.quantity import quantity_bytes
from tests.support.clones import (
    WRITES,
    allocated,
    clone_dv,
    digest,
    image_path,
    image_size,
    losetup,
    reasons,
    source_with_data,
    wait_dv,
    writer_pod,
)
from tests.support.cluster import Cluster
from tests.support.storage import apply, get, namespace, node_name, seed_object, unique, wait_event, wait_until

SOURCE_NS, TARGET_NS = "source-namespace", "destination-namespace"
SOURCE = "my-favorite-vm-disk"
SA = f"system:serviceaccount:{TARGET_NS}:default"
MUTATE = 'admission webhook "datavolume-mutate.cdi.kubevirt.io" denied the request: '


@pytest.fixture(scope="module")
def source(cluster: Cluster) -> Iterator[tuple[str, int]]:
    """The seed's source disk, `source-namespace/my-favorite-vm-disk`, with data a pod wrote: (sha256, size)."""
    for ns in (SOURCE_NS, TARGET_NS):
        cluster.kubectl("create", "namespace", ns)
    source_with_data(cluster, SOURCE_NS, SOURCE)
    path = image_path(cluster, SOURCE_NS, SOURCE)
    size = image_size(path)
    yield digest(path, size), size


def same_bytes(cluster: Cluster, ns: str, claim: str, expected: tuple[str, int]) -> Path:
    path = image_path(cluster, ns, claim)
    assert digest(path, expected[1]) == expected[0], f"{ns}/{claim} differs from its source"
    return path


def no_leftovers(cluster: Cluster, ns: str) -> None:
    """The clone's temporary claims, snapshots, workers and VolumeCloneSources go (they are deleted once it
    succeeded: wait for each one still there)."""
    for kind in ("pvc", "volumesnapshot", "pod", "volumeclonesource"):
        names = [o["metadata"]["name"] for o in cluster.kubectl_json("get", kind, "-n", ns)["items"]]
        for name in names:
            if name.startswith(("tmp-", "cdi-clone", "volume-clone-source", "prep-")) or name.endswith("-source-pod"):
                cluster.kubectl("wait", "--for=delete", f"{kind}/{name}", "-n", ns, "--timeout=60s")


def test_same_namespace_clone_is_a_csi_clone(cluster: Cluster, source: tuple[str, int]) -> None:
    name = unique("same")
    apply(cluster, clone_dv(name, SOURCE_NS, SOURCE), namespace=SOURCE_NS)
    dv = wait_dv(cluster, SOURCE_NS, name)
    assert dv["status"]["progress"] == "100.0%"
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/cloneType"] == "csi-clone"
    seen = reasons(cluster, SOURCE_NS, name)
    assert seen.index("CloneScheduled") < seen.index("CSICloneInProgress") < seen.index("CloneSucceeded")
    # The storage API without a size: the image's virtual size (measured by a pod), plus the filesystem overhead.
    events = {e["reason"]: e["message"] for e in cluster.kubectl_json(
        "get", "events", "-n", SOURCE_NS, "--field-selector", f"involvedObject.name={name}")["items"]}
    assert events["SizeDetectionPodCreated"] == "Size-detection pod created"
    assert events["CloneSucceeded"] == f"Successfully cloned from {SOURCE_NS}/{SOURCE} into {SOURCE_NS}/{name}"
    src = get(cluster, "pvc", SOURCE, SOURCE_NS)
    assert src["metadata"]["annotations"]["cdi.Kubervirt.io/virtualSize"] == str(source[1])
    same_bytes(cluster, SOURCE_NS, name, source)
    no_leftovers(cluster, SOURCE_NS)


def test_seed_clone_into_another_namespace_needs_the_seed_rbac(cluster: Cluster, source: tuple[str, int]) -> None:
    # The destination's default ServiceAccount may do anything in its own namespace, nothing in the source's.
    cluster.kubectl("create", "rolebinding", "sa-admin", "-n", TARGET_NS, "--clusterrole=admin",
                    f"--serviceaccount={TARGET_NS}:default")
    dv = seed_object("DataVolume", "cloner-datavolume")
    assert dv["spec"]["pvc"].get("volumeMode") is None
    refused = cluster.kubectl("create", "-n", TARGET_NS, f"--as={SA}", "-f", "-", input=json.dumps(dv), check=False)
    assert refused.returncode != 0
    assert (f"{MUTATE} User {SA} has insufficient permissions in clone source namespace {SOURCE_NS}"
            in refused.stderr), refused.stderr
    # The seed's ClusterRole and RoleBinding, verbatim.
    apply(cluster, seed_object("ClusterRole", "datavolume-cloner"))
    apply(cluster, seed_object("RoleBinding", "allow-clone-to-user"))
    cluster.kubectl("create", "-n", TARGET_NS, f"--as={SA}", "-f", "-", input=json.dumps(dv))
    wait_dv(cluster, TARGET_NS, "cloner-datavolume")
    # Done once its VolumeCloneSource in the source namespace is gone, with the finalizer that waited for that.
    done = wait_until(cluster, "dv", "cloner-datavolume", TARGET_NS, lambda d: not d["metadata"].get("finalizers"))
    annotations = done["metadata"]["annotations"]
    assert annotations["cdi.kubevirt.io/storage.clone.token"].count(".") == 2  # a signed JWT
    assert annotations["cdi.kubevirt.io/storage.extended.clone.token"]
    assert annotations["cdi.kubevirt.io/cloneType"] == "csi-clone"
    # The 2Gi target is larger than the source: the temporary claim was grown before its PV was handed over.
    seen = reasons(cluster, TARGET_NS, "cloner-datavolume")
    assert "PrepClaimInProgress" in seen and "CSICloneInProgress" in seen
    pvc = get(cluster, "pvc", "cloner-datavolume", TARGET_NS)
    pv = get(cluster, "pv", pvc["spec"]["volumeName"])
    assert pv["spec"]["claimRef"]["namespace"] == TARGET_NS and pv["spec"]["capacity"]["storage"] == "2Gi"
    # Provisioned for another claim (`pvc-<its uid>`: the temporary one in the source namespace), then handed
    # over: the data never crossed namespaces.
    assert pv["metadata"]["name"] != f"pvc-{pvc['metadata']['uid']}"
    same_bytes(cluster, TARGET_NS, "cloner-datavolume", source)
    no_leftovers(cluster, SOURCE_NS)


def test_seed_block_clone_into_a_static_block_pv(cluster: Cluster, source: tuple[str, int], tmp_path: Path) -> None:
    if os.geteuid() != 0 or not Path("/dev/loop-control").exists() or shutil.which("losetup") is None:
        pytest.skip("loop devices need root and /dev/loop-control")
    ns = namespace(cluster, "blk")
    backing = tmp_path / "loop10"
    with open(backing, "wb") as f:
        f.truncate(100 << 20)
    device = losetup("-f", "--show", str(backing))
    try:
        pv = seed_object("PersistentVolume", "local-block-pv10")
        pv["metadata"]["name"] = pv_name = unique("local-block-pv10")
        pv["spec"]["local"]["path"] = device
        pv["spec"]["capacity"]["storage"] = "100Mi"
        pv["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = [
            node_name(cluster)]
        apply(cluster, pv)
        dv = _block_seed_dv()
        dv["spec"]["pvc"]["resources"]["requests"]["storage"] = "100Mi"
        apply(cluster, dv, namespace=ns)
        done = wait_dv(cluster, ns, "cloner-datavolume")
        # A static volume would catch a populated claim first: the clone fills the claim where it binds.
        assert done["metadata"]["annotations"]["cdi.kubevirt.io/cloneType"] == "copy"
        pvc = get(cluster, "pvc", "cloner-datavolume", ns)
        assert pvc["spec"]["volumeName"] == pv_name
        assert reasons(cluster, ns, "cloner-datavolume").count("CloneInProgress") == 1
        assert digest(Path(device), source[1]) == source[0]
        cluster.kubectl("delete", "dv", "-n", ns, "cloner-datavolume", "--wait=true")
        cluster.kubectl("delete", "pv", pv_name, "--wait=true")
    finally:
        losetup("-d", device)


def _block_seed_dv() -> dict[str, Any]:
    """The seed's Block clone DataVolume (the seeds hold two `cloner-datavolume`s; this is the second)."""
    from tests.support.seeds import seed_documents

    for doc in seed_documents():
        obj = doc.obj
        if obj and obj.get("kind") == "DataVolume" and (obj.get("spec") or {}).get("pvc", {}).get(
                "volumeMode") == "Block" and "pvc" in (obj["spec"].get("source") or {}):
            copied: dict[str, Any] = json.loads(json.dumps(obj))
            return copied
    raise KeyError("the seed's Block clone DataVolume")


def test_seed_clone_to_a_labelled_local_pv(cluster: Cluster, source: tuple[str, int], tmp_path: Path) -> None:
    """The seed's "move a VM disk to another node": a local PV labelled `node=node01`, a DataVolume selecting it."""
    # The seed clones `source-namespace/source-vm-disk`: a clone of our source makes it.
    apply(cluster, clone_dv("source-vm-disk", SOURCE_NS, SOURCE), namespace=SOURCE_NS)
    wait_dv(cluster, SOURCE_NS, "source-vm-disk")
    ns = namespace(cluster, "node")
    pv = seed_object("PersistentVolume", "destination-pv")
    pv["metadata"]["name"] = pv_name = unique("destination-pv")
    disk = tmp_path / "local" / "disk1"
    disk.mkdir(parents=True)
    pv["spec"]["local"]["path"] = str(disk)
    pv["spec"]["capacity"]["storage"] = "1Gi"
    pv["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
    pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = [
        node_name(cluster)]
    apply(cluster, pv)
    cluster.kubectl("label", "pv", pv_name, "node=node01")  # the seed's `oc label pv <destination-pv> node=node01`
    dv = seed_object("DataVolume", "clone-datavolume")
    assert dv["apiVersion"] == "cdi.kubevirt.io/v1alpha1" and dv["spec"]["pvc"]["selector"] == {
        "matchLabels": {"node": "node01"}}
    dv["spec"]["pvc"]["resources"]["requests"]["storage"] = "1Gi"
    apply(cluster, dv, namespace=ns)
    wait_dv(cluster, ns, "clone-datavolume")
    assert get(cluster, "pvc", "clone-datavolume", ns)["spec"]["volumeName"] == pv_name
    assert digest(disk / "disk.img", source[1]) == source[0]
    assert image_size(disk / "disk.img") == source[1]
    no_leftovers(cluster, ns)
    cluster.kubectl("delete", "dv", "-n", ns, "clone-datavolume", "--wait=true")
    cluster.kubectl("delete", "pv", pv_name, "--wait=true")


def test_block_to_filesystem_and_back_keeps_bytes_and_holes(cluster: Cluster, source: tuple[str, int]) -> None:
    ns = namespace(cluster, "modes")
    block = unique("block")
    # Filesystem -> Block: host-assisted (a CSI clone cannot change the volume mode), through a temporary claim.
    apply(cluster, clone_dv(block, SOURCE_NS, SOURCE, mode="Block"), namespace=ns)
    done = wait_dv(cluster, ns, block)
    annotations = get(cluster, "pvc", block, ns)["metadata"]["annotations"]
    assert annotations["cdi.kubevirt.io/cloneType"] == "copy"
    assert annotations["cdi.kubevirt.io/cloneFallbackReason"] == (
        "The volume modes of source and target are incompatible")
    assert "CloneInProgress" in reasons(cluster, ns, block) and done["status"]["progress"] == "100.0%"
    device = image_path(cluster, ns, block)
    assert digest(device, source[1]) == source[0]
    # Block -> Filesystem: the device's bytes become disk.img, its holes stay holes.
    back = unique("back")
    apply(cluster, clone_dv(back, ns, block, mode="Filesystem"), namespace=ns)
    wait_dv(cluster, ns, back)
    path = image_path(cluster, ns, back)
    size = image_size(device)
    assert image_size(path) == size
    assert digest(path, size) == digest(device, size)
    written = sum(length for _, length in WRITES)
    assert allocated(path) < written + (4 << 20), "the holes were filled"
    no_leftovers(cluster, ns)


def test_snapshot_strategy_snapshots_then_restores(cluster: Cluster, source: tuple[str, int]) -> None:
    klass = unique("snap")
    apply(cluster, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": klass},
                    "provisioner": "kubevirt.io/hostpath-provisioner", "allowVolumeExpansion": True})
    wait_until(cluster, "storageprofile", klass, "", lambda p: bool((p.get("status") or {}).get("cloneStrategy")))
    cluster.kubectl("patch", "storageprofile", klass, "--type=merge", "-p",
                    json.dumps({"spec": {"cloneStrategy": "snapshot"}}))
    wait_until(cluster, "storageprofile", klass, "",
               lambda p: (p.get("status") or {}).get("cloneStrategy") == "snapshot")
    name = unique("snapped")
    dv = clone_dv(name, SOURCE_NS, SOURCE, size="128Mi")
    dv["spec"]["storage"]["storageClassName"] = klass
    apply(cluster, dv, namespace=TARGET_NS)
    wait_dv(cluster, TARGET_NS, name)
    seen = reasons(cluster, TARGET_NS, name)
    assert seen.index("SnapshotForSmartCloneInProgress") < seen.index("CloneFromSnapshotSourceInProgress")
    assert get(cluster, "pvc", name, TARGET_NS)["metadata"]["annotations"]["cdi.kubevirt.io/cloneType"] == "snapshot"
    same_bytes(cluster, TARGET_NS, name, source)
    no_leftovers(cluster, SOURCE_NS)


def test_archive_content_cannot_change_volume_mode(cluster: Cluster, source: tuple[str, int]) -> None:
    dv = clone_dv(unique("archive"), SOURCE_NS, SOURCE, size="128Mi", mode="Block", api="pvc",
                  contentType="archive")
    refused = cluster.kubectl("create", "-n", TARGET_NS, "-f", "-", input=json.dumps(dv), check=False)
    assert refused.returncode != 0
    assert 'admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request:  ContentType Archive ' \
           "cannot have block volumeMode" in refused.stderr


def test_content_types_must_match(cluster: Cluster, source: tuple[str, int]) -> None:
    name = unique("archive")
    apply(cluster, clone_dv(name, SOURCE_NS, SOURCE, size="128Mi", contentType="archive"), namespace=TARGET_NS)
    event = wait_event(cluster, TARGET_NS, name, "CloneValidationFailed")
    assert event["message"] == ("The clone doesn't meet the validation requirements: Source contentType (kubevirt) "
                                "and target contentType (archive) do not match")
    assert cluster.kubectl("get", "pvc", "-n", TARGET_NS, name, check=False).returncode != 0


def test_smaller_target_is_refused(cluster: Cluster, source: tuple[str, int]) -> None:
    name = unique("small")
    apply(cluster, clone_dv(name, SOURCE_NS, SOURCE, size="16Mi", api="pvc"), namespace=TARGET_NS)
    event = wait_event(cluster, TARGET_NS, name, "CloneValidationFailed")
    capacity = get(cluster, "pvc", SOURCE, SOURCE_NS)["spec"]["resources"]["requests"]["storage"]
    assert event["message"] == ("The clone doesn't meet the validation requirements: target resources requests "
                                f"storage size is smaller than the source {16 << 20} < {quantity_bytes(capacity)}")
    dv = get(cluster, "dv", name, TARGET_NS)
    assert dv["status"]["phase"] == "Pending"
    bound = next(c for c in dv["status"]["conditions"] if c["type"] == "Bound")
    assert bound["reason"] == "CloneValidationFailed"
    assert cluster.kubectl("get", "pvc", "-n", TARGET_NS, name, check=False).returncode != 0


def test_clone_waits_while_a_pod_uses_its_source(cluster: Cluster) -> None:
    ns = namespace(cluster, "busy")
    source_with_data(cluster, ns, "busy-src")
    path = image_path(cluster, ns, "busy-src")
    expected = (digest(path, image_size(path)), image_size(path))
    apply(cluster, writer_pod("user", "busy-src", sleep=3600), namespace=ns)
    wait_until(cluster, "pod", "user", ns, lambda p: (p.get("status") or {}).get("phase") == "Running")
    apply(cluster, clone_dv("busy-clone", ns, "busy-src"), namespace=ns)
    event = wait_event(cluster, ns, "busy-clone", "CloneSourceInUse")
    assert event["message"] == f"pod {ns}/user using PersistentVolumeClaim busy-src"
    assert get(cluster, "dv", "busy-clone", ns)["status"]["phase"] == "CloneScheduled"
    cluster.kubectl("delete", "pod", "-n", ns, "user", "--wait=true")
    # The pod wrote its pattern again before it slept: the same bytes.
    wait_dv(cluster, ns, "busy-clone")
    same_bytes(cluster, ns, "busy-clone", expected)


def test_missing_source_waits_then_clones(cluster: Cluster) -> None:
    ns = namespace(cluster, "late")
    apply(cluster, clone_dv("early", ns, "later"), namespace=ns)
    event = wait_event(cluster, ns, "early", "CloneWithoutSource")
    assert event["message"] == "The source pvc later doesn't exist"
    source_with_data(cluster, ns, "later")
    wait_dv(cluster, ns, "early")
    path = image_path(cluster, ns, "later")
    same_bytes(cluster, ns, "early", (digest(path, image_size(path)), image_size(path)))


def test_forced_copy_strategy_streams_between_workers(cluster: Cluster, source: tuple[str, int]) -> None:
    klass = unique("copy")
    apply(cluster, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                    "metadata": {"name": klass, "annotations": {"cdi.kubevirt.io/clone-strategy": "copy"}},
                    "provisioner": "kubevirt.io/hostpath-provisioner"})
    wait_until(cluster, "storageprofile", klass, "", lambda p: (p.get("status") or {}).get("cloneStrategy") == "copy")
    name = unique("copied")
    dv = clone_dv(name, SOURCE_NS, SOURCE)
    dv["spec"]["storage"]["storageClassName"] = klass
    apply(cluster, dv, namespace=TARGET_NS)
    wait_dv(cluster, TARGET_NS, name)
    assert get(cluster, "pvc", name, TARGET_NS)["metadata"]["annotations"]["cdi.kubevirt.io/cloneType"] == "copy"
    path = same_bytes(cluster, TARGET_NS, name, source)
    written = sum(length for _, length in WRITES)
    assert allocated(path) < written + (4 << 20), "holes were written"
    no_leftovers(cluster, SOURCE_NS)
    assert not [s for s in cluster.kubectl_json("get", "secrets", "-n", SOURCE_NS)["items"]
                if s["metadata"]["name"].startswith("cdi-clone-")]
