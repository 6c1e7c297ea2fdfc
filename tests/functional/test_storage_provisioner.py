"""The embedded hostpath provisioner with the real kubectl: dynamic PVs, Block volumes, HostPathProvisioner CRs
(v1beta1 storage pools and the seed's v1alpha1 pathConfig) and WaitForFirstConsumer classes."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

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
    volume_of,
    wait_event,
    wait_phase,
    wait_until,
)

HPP_API = "hostpathprovisioner.kubevirt.io"


def test_dynamic_filesystem_and_block_volumes(cluster: Cluster) -> None:
    ns = namespace(cluster, "dyn")
    apply(cluster, pvc("fs", "5Gi"), pvc("blk", "8Mi", mode="Block"), namespace=ns)
    node = node_name(cluster)
    for name in ("fs", "blk"):
        wait_phase(cluster, ns, name)
        claim = get(cluster, "pvc", name, ns)
        pv = volume_of(cluster, ns, name)
        assert pv["metadata"]["name"] == f"pvc-{claim['metadata']['uid']}"
        assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "kubevirt.io/hostpath-provisioner"
        assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]
        assert pv["spec"]["storageClassName"] == "local"
        wait_event(cluster, ns, name, "ProvisioningSucceeded",
                   f"Successfully provisioned volume {pv['metadata']['name']}")
    fs = volume_of(cluster, ns, "fs")
    assert fs["spec"]["capacity"] == {"storage": "5Gi"}  # the request: hostpath does not enforce it
    path = Path(fs["spec"]["hostPath"]["path"])
    assert path.is_dir() and path.parent == cluster.data_dir.resolve() / "volumes"
    assert path.name == fs["metadata"]["name"]  # no naming prefix in the built-in pool
    blk = volume_of(cluster, ns, "blk")
    annotations = blk["metadata"]["annotations"]
    backing = Path(annotations["pycdi.io/block-backing"])
    assert backing.stat().st_size == 8 * 1024 * 1024
    assert backing.stat().st_blocks == 0  # sparse
    device = Path(blk["spec"]["hostPath"]["path"])
    if annotations["pycdi.io/block-kind"] == "loop":
        assert stat.S_ISBLK(os.stat(device).st_mode)
    else:
        assert device == backing
    cluster.kubectl("delete", "-n", ns, "pvc/blk", "--timeout=60s")
    cluster.kubectl("wait", f"pv/{blk['metadata']['name']}", "--for=delete", "--timeout=60s")
    assert not backing.exists()


def hpp(name: str, spec: dict[str, Any], version: str = "v1beta1") -> dict[str, Any]:
    return {"apiVersion": f"{HPP_API}/{version}", "kind": "HostPathProvisioner", "metadata": {"name": name},
            "spec": spec}


def wait_available(cluster: Cluster, name: str) -> dict[str, Any]:
    def available(obj: dict[str, Any]) -> bool:
        conditions = (obj.get("status") or {}).get("conditions", [])
        return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)
    return wait_until(cluster, "hostpathprovisioners", name, "", available)


def test_hpp_storage_pool_with_wait_for_first_consumer(cluster: Cluster, tmp_path: Path) -> None:
    ns = namespace(cluster, "wffc")
    name, klass = unique("hpp"), unique("hpp-csi")
    pool = tmp_path / "pool"
    apply(cluster, hpp(name, {"imagePullPolicy": "IfNotPresent",
                              "storagePools": [{"name": "fast", "path": str(pool)}]}))
    try:
        status = wait_available(cluster, name)["status"]
        assert {c["type"]: c["status"] for c in status["conditions"]} == {
            "Available": "True", "Progressing": "False", "Degraded": "False"}
        assert status["storagePoolStatuses"][0]["name"] == "fast"
        apply(cluster, storage_class(klass, "kubevirt.io.hostpath-provisioner", reclaimPolicy="Delete",
                                     volumeBindingMode="WaitForFirstConsumer", parameters={"storagePool": "fast"}))
        apply(cluster, pvc("disk", "1Gi", storage_class=klass), namespace=ns)
        wait_event(cluster, ns, "disk", "WaitForFirstConsumer",
                   "waiting for first consumer to be created before binding")
        assert get(cluster, "pvc", "disk", ns)["status"]["phase"] == "Pending"
        # A pod using the claim: the scheduler picks this node and annotates the claim; then it binds.
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "consumer"},
               "spec": {"containers": [{"name": "c", "image": "registry.example/app:1"}],
                        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "disk"}}]}}
        apply(cluster, pod, namespace=ns)
        wait_phase(cluster, ns, "disk")
        claim = get(cluster, "pvc", "disk", ns)
        assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node_name(cluster)
        path = host_path(cluster, ns, "disk")
        assert path.parent == pool and path.is_dir()
        assert volume_of(cluster, ns, "disk")["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == \
            "kubevirt.io.hostpath-provisioner"
        pv_name = claim["spec"]["volumeName"]
        cluster.kubectl("delete", "-n", ns, "pod/consumer", "--grace-period=0", "--force", "--timeout=60s")
        cluster.kubectl("delete", "-n", ns, "pvc/disk", "--timeout=60s")
        # Reclaim policy Delete: the PV goes after the claim, taking its data with it.
        cluster.kubectl("wait", "--for=delete", f"pv/{pv_name}", "--timeout=60s", check=False)
        assert cluster.kubectl("get", "pv", pv_name, check=False).returncode != 0
        assert not path.exists()
    finally:
        cluster.kubectl("delete", "hostpathprovisioners", name, "--timeout=60s")


def test_seed_hpp_v1alpha1_path_config_and_naming_prefix(cluster: Cluster, tmp_path: Path) -> None:
    ns = namespace(cluster, "legacy")
    cr = seed_object("HostPathProvisioner", "hostpath-provisioner")
    cr["metadata"]["name"] = name = unique("hostpath-provisioner")
    cr["spec"]["pathConfig"] = {"path": str(tmp_path / "pvs"), "useNamingPrefix": "true"}  # the doc's "true"
    apply(cluster, cr)
    try:
        wait_available(cluster, name)
        klass = seed_object("StorageClass", "hostpath-provisioner")
        klass["metadata"]["name"] = storage = unique("hostpath-provisioner")
        klass["volumeBindingMode"] = "Immediate"  # the seed's WaitForFirstConsumer is covered above
        apply(cluster, klass)
        apply(cluster, pvc("vmdisk", "1Gi", storage_class=storage), namespace=ns)
        wait_phase(cluster, ns, "vmdisk")
        pv = volume_of(cluster, ns, "vmdisk")
        path = Path(pv["spec"]["hostPath"]["path"])
        assert path == tmp_path / "pvs" / f"vmdisk-{pv['metadata']['name']}"
        assert path.is_dir()
    finally:
        cluster.kubectl("delete", "hostpathprovisioners", name, "--timeout=60s")


def test_hpp_reports_a_pool_it_cannot_use(cluster: Cluster, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    name = unique("bad")
    apply(cluster, hpp(name, {"storagePools": [{"name": "p", "path": str(blocker / "pool")}]}))
    try:
        obj = wait_until(cluster, "hostpathprovisioners", name, "", lambda o: any(
            c.get("type") == "Degraded" and c.get("status") == "True"
            for c in (o.get("status") or {}).get("conditions", [])))
        conditions = {c["type"]: c for c in obj["status"]["conditions"]}
        assert conditions["Available"]["status"] == "False"
        assert str(blocker / "pool") in conditions["Degraded"]["message"]
    finally:
        cluster.kubectl("delete", "hostpathprovisioners", name, "--timeout=60s")


def test_volumes_survive_a_restart(cluster: Cluster) -> None:
    ns = namespace(cluster, "restart")
    apply(cluster, pvc("fs", "1Mi"), pvc("blk", "1Mi", mode="Block"), namespace=ns)
    for name in ("fs", "blk"):
        wait_phase(cluster, ns, name)
    (host_path(cluster, ns, "fs") / "data").write_text("kept")
    before = volume_of(cluster, ns, "blk")
    cluster.stop()
    cluster.start()
    for name in ("fs", "blk"):
        wait_phase(cluster, ns, name)
    assert (host_path(cluster, ns, "fs") / "data").read_text() == "kept"
    after = volume_of(cluster, ns, "blk")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    device = Path(after["spec"]["hostPath"]["path"])
    if after["metadata"]["annotations"]["pycdi.io/block-kind"] == "loop":
        # The loop device is still (or again) attached to the volume's backing file.
        backing = Path(f"/sys/block/{device.name}/loop/backing_file").read_text().strip()
        assert backing == after["metadata"]["annotations"]["pycdi.io/block-backing"]
