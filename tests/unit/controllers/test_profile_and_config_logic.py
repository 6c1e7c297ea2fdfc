"""The pure parts of the StorageProfile and CDIConfig controllers: provisioner keys, strategies, status."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.controllers.cdiconfig import CDIConfigOptions, compute_status
from pycdi.controllers.cdiconfig.controller import InvalidOverhead
from pycdi.controllers.storageprofile import capabilities as caps
from pycdi.controllers.storageprofile.controller import clone_strategy, source_format


def sc(provisioner: str, parameters: dict[str, str] | None = None, **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "c", "annotations": annotations}, "provisioner": provisioner,
            "parameters": parameters or {}}


@pytest.mark.parametrize(("provisioner", "parameters", "key"), [
    ("kubevirt.io.hostpath-provisioner", {}, "kubevirt.io.hostpath-provisioner"),
    ("kubevirt.io.hostpath-provisioner", {"overlayCSI": "x"}, "kubevirt.io.hostpath-provisioner/overlay"),
    ("ebs.csi.aws.com", {"type": "gp3"}, "ebs.csi.aws.com/gp"),
    ("csi.trident.netapp.io", {"backendType": "ontap-san-economy"}, "csi.trident.netapp.io/ontap-san"),
    ("csi.trident.netapp.io", {}, "UNKNOWN"),
    ("csi-powermax.dellemc.com", {"csi.storage.k8s.io/fstype": "NFS"}, "csi-powermax.dellemc.com/nfs"),
    ("pxd.portworx.com", {"sharedv4_mount_options": "vers=3.0,nolock"}, "pxd.portworx.com/nfs"),
    ("vpc.file.csi.ibm.io", {"profile": "dp2", "vmState": "true"}, "vpc.file.csi.ibm.io/dp2-rwo"),
])
def test_provisioner_keys(provisioner: str, parameters: dict[str, str], key: str) -> None:
    assert caps.provisioner_key(sc(provisioner, parameters)) == key


def test_recognized_reasons() -> None:
    assert caps.recognized(sc("kubevirt.io/hostpath-provisioner")) == "RecognizedProvisioner"
    assert caps.recognized(sc("example.com/x")) == "UnrecognizedProvisioner"
    assert caps.recognized(sc("csi.trident.netapp.io")) == "UnrecognizedStorageClassParameters"


def test_no_provisioner_capabilities_come_from_its_pvs() -> None:
    pvs = [{"spec": {"storageClassName": "c", "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                     "volumeMode": "Block"}},
           {"spec": {"storageClassName": "c", "accessModes": ["ReadWriteOnce"]}},
           {"spec": {"storageClassName": "other", "accessModes": ["ReadWriteMany"]}}]
    assert caps.capabilities(sc("kubernetes.io/no-provisioner"), pvs) == [
        ("ReadWriteOnce", "Block"), ("ReadOnlyMany", "Block"), ("ReadWriteOnce", "Filesystem")]
    assert caps.capabilities(sc("kubernetes.io/no-provisioner"), []) is None


def test_clone_strategy_order() -> None:
    assert clone_strategy(sc("example.com/x"), "csi-clone", "") == "csi-clone"
    assert clone_strategy(sc("example.com/x", **{"cdi.kubevirt.io/clone-strategy": "snapshot"}), None, "") == \
        "snapshot"
    assert clone_strategy(sc("example.com/x"), None, "vsc") == "snapshot"
    assert clone_strategy(sc("example.com/x"), None, "") == "copy"
    assert clone_strategy(sc("topolvm.io"), None, "vsc") == "copy"  # the table wins over the snapshot class
    assert clone_strategy(sc("pd.csi.storage.gke.io"), None, "") == "copy"  # snapshot advised, no class
    assert source_format(sc("pd.csi.storage.gke.io"), None, "vsc") == "snapshot"
    assert source_format(sc("pd.csi.storage.gke.io"), None, "") == "pvc"


def test_cdiconfig_status() -> None:
    config = {"spec": {"scratchSpaceStorageClass": "fast", "filesystemOverhead": {"global": "bad"}}}
    status = compute_status(config, ["fast", "slow"], CDIConfigOptions(upload_proxy_url="https://127.0.0.1:31001"))
    assert status["scratchSpaceStorageClass"] == "fast"
    assert status["uploadProxyURL"] == "https://127.0.0.1:31001"
    assert status["filesystemOverhead"] == {"global": "0.06", "storageClass": {"fast": "0.06", "slow": "0.06"}}
    assert status["preallocation"] is False
    with pytest.raises(InvalidOverhead):
        compute_status({"spec": {"filesystemOverhead": {"storageClass": {"fast": "2"}}}}, ["fast"],
                       CDIConfigOptions())
