"""Claims and volumes with the real kubectl: static PVs by selector (the seed's flows), phases, events,
reclaim policies, protection finalizers and expansion."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster
from tests.support.storage import (
    apply,
    get,
    host_path,
    namespace,
    node_name,
    pvc,
    seed_object,
    storage_class,
    unique,
    wait_event,
    wait_phase,
    wait_until,
)


def local_pv(name: str, path: str, node: str, size: str = "10Gi", mode: str = "Filesystem",
             labels: dict[str, str] | None = None, policy: str = "Retain", storage: str = "local") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": size}, "local": {"path": path},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
                     "persistentVolumeReclaimPolicy": policy, "storageClassName": storage, "volumeMode": mode}}


def test_seed_local_pv_is_claimed_by_label_selector(cluster: Cluster, tmp_path: Path) -> None:
    ns = namespace(cluster, "sel")
    node = node_name(cluster)
    # The seed's destination PV (node01 in the doc; this machine's node here, so its affinity can be met).
    pv = seed_object("PersistentVolume", "destination-pv")
    pv["metadata"]["name"] = name = unique("destination-pv")
    pv["metadata"]["labels"] = {"node": "node01", "test": ns}
    pv["spec"]["local"]["path"] = str(tmp_path)
    pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = [node]
    decoy = local_pv(unique("decoy"), str(tmp_path), node, "10Gi", labels={"test": ns})
    apply(cluster, pv, decoy)
    wait_phase(cluster, "", name, "Available", kind="pv")
    claim = pvc("clone-target", "10Gi", storage_class="local", selector={"matchLabels": {"node": "node01"}})
    apply(cluster, claim, namespace=ns)
    wait_phase(cluster, ns, "clone-target")
    bound = get(cluster, "pvc", "clone-target", ns)
    assert bound["spec"]["volumeName"] == name
    assert bound["status"]["capacity"] == {"storage": "10Gi"}
    assert bound["status"]["accessModes"] == ["ReadWriteOnce"]
    annotations = bound["metadata"]["annotations"]
    assert annotations["pv.kubernetes.io/bind-completed"] == "yes"
    assert annotations["pv.kubernetes.io/bound-by-controller"] == "yes"
    volume = get(cluster, "pv", name)
    assert volume["status"]["phase"] == "Bound"
    assert volume["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
    assert volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert volume["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert get(cluster, "pv", decoy["metadata"]["name"])["status"]["phase"] == "Available"
    # A free 10Gi volume of class local would catch other tests' claims: gone.
    cluster.kubectl("delete", "pv", decoy["metadata"]["name"], "--timeout=60s")


def test_smallest_fitting_volume_wins_and_affinity_elsewhere_never_binds(cluster: Cluster, tmp_path: Path) -> None:
    ns = namespace(cluster, "fit")
    node = node_name(cluster)
    storage = unique("static")
    big, small, tiny, away = (unique(n) for n in ("big", "small", "tiny", "away"))
    apply(cluster, local_pv(big, str(tmp_path), node, "5Gi", storage=storage),
          local_pv(small, str(tmp_path), node, "2Gi", storage=storage),
          local_pv(tiny, str(tmp_path), node, "1Gi", storage=storage),
          local_pv(away, str(tmp_path), "another-node", "2Gi", storage=storage))
    for name in (big, small, tiny, away):
        wait_phase(cluster, "", name, "Available", kind="pv")
    apply(cluster, pvc("want", "1500Mi", storage_class=storage), namespace=ns)
    wait_phase(cluster, ns, "want")
    assert get(cluster, "pvc", "want", ns)["spec"]["volumeName"] == small
    # Pre-binding by spec.volumeName picks that volume even when a smaller one fits better.
    apply(cluster, pvc("named", "1Gi", storage_class=storage, volumeName=big), namespace=ns)
    wait_phase(cluster, ns, "named")
    assert get(cluster, "pv", big)["spec"]["claimRef"]["name"] == "named"
    assert "pv.kubernetes.io/bound-by-controller" not in get(cluster, "pvc", "named", ns)["metadata"]["annotations"]
    # Left: tiny (too small) and away (pinned to another node): no match, and the class does not exist.
    apply(cluster, pvc("left", "2Gi", storage_class=storage), namespace=ns)
    wait_event(cluster, ns, "left", "ProvisioningFailed", f'storageclass.storage.k8s.io "{storage}" not found')
    assert get(cluster, "pvc", "left", ns)["status"]["phase"] == "Pending"
    assert "claimRef" not in get(cluster, "pv", away)["spec"]


def test_no_class_no_volume_and_missing_class_events(cluster: Cluster) -> None:
    ns = namespace(cluster, "ev")
    apply(cluster, pvc("none", "1Gi", storage_class=""), pvc("ghost", "1Gi", storage_class="no-such-class"),
          namespace=ns)
    event = wait_event(cluster, ns, "none", "FailedBinding",
                       "no persistent volumes available for this claim and no storage class is set")
    assert event["type"] == "Normal" and event["source"]["component"] == "persistentvolume-controller"
    event = wait_event(cluster, ns, "ghost", "ProvisioningFailed",
                       'storageclass.storage.k8s.io "no-such-class" not found')
    assert event["type"] == "Warning"
    for name in ("none", "ghost"):
        assert get(cluster, "pvc", name, ns)["status"]["phase"] == "Pending"


def test_default_class_is_set_on_claims_without_one(cluster: Cluster) -> None:
    ns = namespace(cluster, "dflt")
    apply(cluster, pvc("plain", "1Mi"), namespace=ns)
    claim = get(cluster, "pvc", "plain", ns)
    assert claim["spec"]["storageClassName"] == "local"
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    wait_phase(cluster, ns, "plain")
    annotations = get(cluster, "pvc", "plain", ns)["metadata"]["annotations"]
    assert annotations["volume.kubernetes.io/storage-provisioner"] == "kubevirt.io/hostpath-provisioner"
    assert annotations["volume.beta.kubernetes.io/storage-provisioner"] == "kubevirt.io/hostpath-provisioner"


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_reclaim_policies(cluster: Cluster, policy: str) -> None:
    ns = namespace(cluster, f"reclaim-{policy.lower()}")
    storage = unique(policy.lower())
    apply(cluster, storage_class(storage, reclaimPolicy=policy))
    apply(cluster, pvc("data", "1Mi", storage_class=storage), namespace=ns)
    wait_phase(cluster, ns, "data")
    path = host_path(cluster, ns, "data")
    (path / "keep.txt").write_text("bytes")
    volume = get(cluster, "pvc", "data", ns)["spec"]["volumeName"]
    cluster.kubectl("delete", "-n", ns, "pvc/data", "--timeout=60s")
    if policy == "Delete":
        cluster.kubectl("wait", f"pv/{volume}", "--for=delete", "--timeout=60s")
        assert not path.exists()
    else:
        wait_phase(cluster, "", volume, "Released", kind="pv")
        assert (path / "keep.txt").read_text() == "bytes"
        cluster.kubectl("delete", f"pv/{volume}", "--timeout=60s")  # not bound: pv-protection lets it go
        assert path.exists()
        shutil.rmtree(path)


def test_static_volume_with_delete_policy_fails_as_kube_reports(cluster: Cluster, tmp_path: Path) -> None:
    ns = namespace(cluster, "static-del")
    storage = unique("st")
    name = unique("pv")
    apply(cluster, local_pv(name, str(tmp_path), node_name(cluster), "1Gi", policy="Delete", storage=storage))
    apply(cluster, pvc("c", "1Gi", storage_class=storage), namespace=ns)
    wait_phase(cluster, ns, "c")
    cluster.kubectl("delete", "-n", ns, "pvc/c", "--timeout=60s")
    wait_phase(cluster, "", name, "Failed", kind="pv")
    pv = get(cluster, "pv", name)
    assert pv["status"]["message"] == (f'error getting deleter volume plugin for volume "{name}": '
                                       "no deletable volume plugin matched")
    wait_event(cluster, "default", name, "VolumeFailedDelete")
    cluster.kubectl("delete", f"pv/{name}", "--timeout=60s")


def test_claim_in_use_by_a_pod_is_protected(cluster: Cluster) -> None:
    ns = namespace(cluster, "prot")
    apply(cluster, pvc("used", "1Mi"), namespace=ns)
    wait_phase(cluster, ns, "used")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
           "spec": {"containers": [{"name": "c", "image": "registry.example/other:1"}],
                    "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "used"}}]}}
    apply(cluster, pod, namespace=ns)
    cluster.kubectl("delete", "-n", ns, "pvc/used", "--wait=false")
    claim = wait_until(cluster, "pvc", "used", ns, lambda p: bool(p["metadata"].get("deletionTimestamp")))
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    volume = claim["spec"]["volumeName"]
    cluster.kubectl("delete", "-n", ns, "pod/user", "--grace-period=0", "--force", "--timeout=60s")
    cluster.kubectl("wait", "-n", ns, "pvc/used", "--for=delete", "--timeout=60s")
    cluster.kubectl("wait", f"pv/{volume}", "--for=delete", "--timeout=60s")


def test_expansion(cluster: Cluster) -> None:
    ns = namespace(cluster, "grow")
    apply(cluster, pvc("fs", "1Mi"), pvc("blk", "1Mi", mode="Block"), namespace=ns)
    for name in ("fs", "blk"):
        wait_phase(cluster, ns, name)
        cluster.kubectl("patch", "-n", ns, f"pvc/{name}", "--type=merge",
                        "-p", '{"spec":{"resources":{"requests":{"storage":"4Mi"}}}}')
    for name in ("fs", "blk"):
        cluster.kubectl("wait", "-n", ns, f"pvc/{name}", "--for=jsonpath={.status.capacity.storage}=4Mi",
                        "--timeout=60s")
        assert get(cluster, "pv", get(cluster, "pvc", name, ns)["spec"]["volumeName"])["spec"]["capacity"] == {
            "storage": "4Mi"}
        wait_event(cluster, ns, name, "VolumeResizeSuccessful", "Resize volume succeeded")
        wait_event(cluster, ns, name, "ExternalExpanding")
    assert host_path(cluster, ns, "blk").stat().st_size == 4 * 1024 * 1024
    # A class without allowVolumeExpansion refuses at admission.
    fixed = unique("fixed")
    apply(cluster, storage_class(fixed))
    apply(cluster, pvc("rigid", "1Mi", storage_class=fixed), namespace=ns)
    wait_phase(cluster, ns, "rigid")
    result = cluster.kubectl("patch", "-n", ns, "pvc/rigid", "--type=merge",
                             "-p", '{"spec":{"resources":{"requests":{"storage":"2Mi"}}}}', check=False)
    assert result.returncode != 0
    assert ('persistentvolumeclaims "rigid" is forbidden: only dynamically provisioned pvc can be resized and '
            "the storageclass that provisions the pvc must support resize") in result.stderr


def _losetup(*args: str) -> str:
    return subprocess.run(["losetup", *args], capture_output=True, text=True, check=True).stdout.strip()


def test_seed_static_block_pv_on_a_loop_device(cluster: Cluster, tmp_path: Path) -> None:
    if os.geteuid() != 0 or not Path("/dev/loop-control").exists() or shutil.which("losetup") is None:
        pytest.skip("loop devices need root and /dev/loop-control")
    ns = namespace(cluster, "loop")
    backing = tmp_path / "loop10"
    subprocess.run(["dd", "if=/dev/zero", f"of={backing}", "bs=1M", "count=20"], check=True, capture_output=True)
    device = _losetup("-f", "--show", str(backing))
    try:
        pv = seed_object("PersistentVolume", "local-block-pv10")
        pv["metadata"]["name"] = name = unique("local-block-pv10")
        pv["metadata"]["labels"] = {"disk": ns}
        pv["spec"]["local"]["path"] = device
        pv["spec"]["capacity"]["storage"] = "20Mi"
        pv["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = [
            node_name(cluster)]
        apply(cluster, pv)
        apply(cluster, pvc("disk", "20Mi", storage_class="local", mode="Block",
                           selector={"matchLabels": {"disk": ns}}), namespace=ns)
        wait_phase(cluster, ns, "disk")
        assert get(cluster, "pvc", "disk", ns)["spec"]["volumeName"] == name
        cluster.kubectl("delete", "-n", ns, "pvc/disk", "--timeout=60s")
        wait_phase(cluster, "", name, "Released", kind="pv")
        cluster.kubectl("delete", f"pv/{name}", "--timeout=60s")
    finally:
        _losetup("-d", device)
