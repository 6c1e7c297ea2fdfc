"""What CDI knows of well-known provisioners (upstream's pkg/storagecapabilities): access/volume modes,
advised clone strategy and DataImportCron source format, minimum PVC size."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

RWO, ROX, RWX = "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"
BLOCK, FILE = "Block", "Filesystem"
Capability = tuple[str, str]  # (access mode, volume mode)

_RBD = [(RWX, BLOCK), (RWO, BLOCK), (RWO, FILE)]
_ALL_BUT_RWX_FILE = [(RWX, BLOCK), (RWO, BLOCK), (RWO, FILE), (ROX, BLOCK), (ROX, FILE)]
_ALL_FS = [(RWX, FILE), (RWO, FILE), (ROX, FILE)]
_DELL_BLOCK = [(RWX, BLOCK), (RWO, BLOCK), (RWO, FILE), (ROX, BLOCK)]
_RWO_BOTH = [(RWO, BLOCK), (RWO, FILE)]
_RWX_BLOCK_RWO_BOTH = [(RWX, BLOCK), (RWO, BLOCK), (RWO, FILE)]
_RWX_RWO_FILE = [(RWX, FILE), (RWO, FILE)]
_ALL_FOUR = [(RWX, BLOCK), (RWX, FILE), (RWO, BLOCK), (RWO, FILE)]

HPP_CSI = "kubevirt.io.hostpath-provisioner"
HPP_OVERLAY_CSI = "kubevirt.io.hostpath-provisioner/overlay"
HPP_LEGACY = "kubevirt.io/hostpath-provisioner"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
UNKNOWN = "UNKNOWN"

CAPABILITIES: dict[str, list[Capability]] = {
    HPP_CSI: [(RWO, FILE)], HPP_OVERLAY_CSI: [(RWX, FILE)], HPP_LEGACY: [(RWO, FILE)],
    "k8s.io/minikube-hostpath": [(RWO, FILE)],
    "nfs.csi.k8s.io": [(RWX, FILE)], "k8s-sigs.io/nfs-subdir-external-provisioner": [(RWX, FILE)],
    "kubernetes.io/rbd": _RBD, "rbd.csi.ceph.com": _RBD, "rook-ceph.rbd.csi.ceph.com": _RBD,
    "openshift-storage.rbd.csi.ceph.com": _RBD,
    "cephfs.csi.ceph.com": _RWX_RWO_FILE, "rook-ceph.cephfs.csi.ceph.com": _RWX_RWO_FILE,
    "openshift-storage.cephfs.csi.ceph.com": _RWX_RWO_FILE,
    "linstor.csi.linbit.com": _ALL_BUT_RWX_FILE,
    "csi-unity.dellemc.com": _ALL_BUT_RWX_FILE, "csi-unity.dellemc.com/nfs": _ALL_FS,
    "csi-vxflexos.dellemc.com": _ALL_BUT_RWX_FILE, "csi-vxflexos.dellemc.com/nfs": _ALL_FS,
    "csi-isilon.dellemc.com": _ALL_FS,
    "csi-powermax.dellemc.com": _DELL_BLOCK, "csi-powermax.dellemc.com/nfs": _ALL_FS,
    "csi-powerstore.dellemc.com": _DELL_BLOCK, "csi-powerstore.dellemc.com/nfs": _ALL_FS,
    "kubernetes.io/storageos": [(RWO, FILE)], "storageos": [(RWO, FILE)],
    "kubernetes.io/aws-ebs": [(RWO, BLOCK)], "ebs.csi.aws.com": [(RWO, BLOCK)],
    "ebs.csi.aws.com/io1": [(RWO, BLOCK)], "ebs.csi.aws.com/io2": _RWX_BLOCK_RWO_BOTH,
    "ebs.csi.aws.com/gp": [(RWO, BLOCK)],
    "efs.csi.aws.com": _RWX_RWO_FILE,
    "kubernetes.io/azure-disk": [(RWO, BLOCK)], "disk.csi.azure.com": [(RWO, BLOCK)],
    "kubernetes.io/azure-file": [(RWX, FILE)], "file.csi.azure.com": [(RWX, FILE)],
    "kubernetes.io/gce-pd": _RWO_BOTH, "pd.csi.storage.gke.io": _RWO_BOTH,
    "pd.csi.storage.gke.io/hyperdisk": _RWX_BLOCK_RWO_BOTH,
    "hspc.csi.hitachi.com": _RWX_BLOCK_RWO_BOTH, "csi.hpe.com": _RWX_BLOCK_RWO_BOTH,
    "spectrumscale.csi.ibm.com": _RWX_RWO_FILE, "block.csi.ibm.com": _RWX_BLOCK_RWO_BOTH,
    "vpc.block.csi.ibm.io": _RWO_BOTH,
    "vpc.file.csi.ibm.io": _RWX_RWO_FILE, "vpc.file.csi.ibm.io/dp2": _RWX_RWO_FILE,
    "vpc.file.csi.ibm.io/dp2-rwo": [(RWO, FILE)], "vpc.file.csi.ibm.io/rfs": _RWX_RWO_FILE,
    "vpc.file.csi.ibm.io/rfs-rwo": [(RWO, FILE)],
    "kubernetes.io/portworx-volume/nfs": _RWX_RWO_FILE, "kubernetes.io/portworx-volume": _ALL_FOUR,
    "pxd.portworx.com/nfs": _RWX_RWO_FILE, "pxd.portworx.com": _ALL_FOUR,
    "pxd.portworx.com/pure_block": _RWX_BLOCK_RWO_BOTH, "pxd.portworx.com/pure_fa_file": _RWX_RWO_FILE,
    "csi.trident.netapp.io/ontap-nas": _RWX_RWO_FILE, "csi.trident.netapp.io/ontap-san": [(RWX, BLOCK)],
    "csi.trident.netapp.io/gcnv-flex": _RWX_RWO_FILE,
    "topolvm.cybozu.com": _RWO_BOTH, "topolvm.io": _RWO_BOTH,
    "cinder.csi.openstack.org": _RWO_BOTH, "manila.csi.openstack.org": [(RWX, FILE)],
    "csi.ovirt.org": _RWO_BOTH,
    "infinibox-csi-driver/iscsiorfibrechannel": _RWX_BLOCK_RWO_BOTH,
    "infinibox-csi-driver/nvme": _RWX_BLOCK_RWO_BOTH, "infinibox-csi-driver/nfs": _RWX_RWO_FILE,
    "csi.vsphere.vmware.com": _RWO_BOTH, "csi.vsphere.vmware.com/nfs": [(RWX, FILE), (RWO, BLOCK), (RWO, FILE)],
    "csi.huawei.com": _ALL_BUT_RWX_FILE, "csi.huawei.com/nfs": _ALL_FS,
    "kubesan.gitlab.io": [(RWX, BLOCK), (ROX, BLOCK), (RWO, BLOCK), (RWO, FILE)],
    "driver.longhorn.io": [(RWO, BLOCK)], "driver.longhorn.io/migratable": [(RWX, BLOCK), (RWO, BLOCK)],
    "driver.longhorn.io/nfs": _RWX_RWO_FILE, "driver.longhorn.io/fs": [(RWO, FILE)],
    "blockvolume.csi.oraclecloud.com": _RWX_BLOCK_RWO_BOTH,
    "csi.san.synology.com/iscsi": _RWX_BLOCK_RWO_BOTH, "csi.san.synology.com/nfs": _RWX_RWO_FILE,
    "csi.san.synology.com/smb": _RWX_RWO_FILE,
    "directpv-min-io": [(RWO, FILE)],
}

_SNAPSHOT_FORMAT = ("rook-ceph.rbd.csi.ceph.com", "openshift-storage.rbd.csi.ceph.com",
                    "csi.trident.netapp.io/ontap-nas", "csi.trident.netapp.io/ontap-san",
                    "csi.trident.netapp.io/gcnv-flex", "pd.csi.storage.gke.io", "pd.csi.storage.gke.io/hyperdisk",
                    "vpc.file.csi.ibm.io", "vpc.file.csi.ibm.io/dp2", "vpc.file.csi.ibm.io/dp2-rwo",
                    "vpc.file.csi.ibm.io/rfs", "vpc.file.csi.ibm.io/rfs-rwo")
SOURCE_FORMATS: dict[str, str] = dict.fromkeys(_SNAPSHOT_FORMAT, "snapshot")

_CSI_CLONE = ("csi-vxflexos.dellemc.com", "csi-isilon.dellemc.com", "csi-powermax.dellemc.com",
              "hspc.csi.hitachi.com", "csi.hpe.com", "spectrumscale.csi.ibm.com", "block.csi.ibm.com",
              "rbd.csi.ceph.com", "rook-ceph.rbd.csi.ceph.com", "openshift-storage.rbd.csi.ceph.com",
              "cephfs.csi.ceph.com", "rook-ceph.cephfs.csi.ceph.com", "openshift-storage.cephfs.csi.ceph.com",
              "pxd.portworx.com/nfs", "pxd.portworx.com", "pxd.portworx.com/pure_block",
              "pxd.portworx.com/pure_fa_file", "infinibox-csi-driver/iscsiorfibrechannel",
              "infinibox-csi-driver/nvme", "infinibox-csi-driver/nfs", "kubesan.gitlab.io",
              "csi.san.synology.com/iscsi", "csi.san.synology.com/nfs", "csi.san.synology.com/smb",
              "blockvolume.csi.oraclecloud.com")
_COPY = ("csi-powerstore.dellemc.com", "vpc.block.csi.ibm.io", "topolvm.cybozu.com", "topolvm.io")
_SNAPSHOT = ("vpc.file.csi.ibm.io", "vpc.file.csi.ibm.io/dp2", "vpc.file.csi.ibm.io/dp2-rwo",
             "vpc.file.csi.ibm.io/rfs", "vpc.file.csi.ibm.io/rfs-rwo", "csi.trident.netapp.io/ontap-nas",
             "csi.trident.netapp.io/ontap-san", "csi.trident.netapp.io/gcnv-flex", "pd.csi.storage.gke.io",
             "pd.csi.storage.gke.io/hyperdisk")
CLONE_STRATEGIES: dict[str, str] = {**dict.fromkeys(_CSI_CLONE, "csi-clone"), **dict.fromkeys(_COPY, "copy"),
                                    **dict.fromkeys(_SNAPSHOT, "snapshot")}

MINIMUM_PVC_SIZE: dict[str, str] = {
    "pd.csi.storage.gke.io/hyperdisk": "4Gi", "ebs.csi.aws.com/io1": "4Gi", "ebs.csi.aws.com/io2": "4Gi",
    "ebs.csi.aws.com/gp": "1Gi", "csi.san.synology.com/iscsi": "1Gi", "csi.san.synology.com/nfs": "1Gi",
    "csi.san.synology.com/smb": "1Gi", "csi.trident.netapp.io/gcnv-flex": "1Gi",
    "vpc.file.csi.ibm.io/rfs": "1Gi", "vpc.file.csi.ibm.io/rfs-rwo": "1Gi", "vpc.file.csi.ibm.io/dp2": "10Gi",
    "vpc.file.csi.ibm.io/dp2-rwo": "10Gi", "xspc.csi.hpe.com": "1Gi", "hspc.csi.hitachi.com": "1Gi",
}
USE_RWO_FOR_DATA_IMPORT_CRON = frozenset({"pd.csi.storage.gke.io", "pd.csi.storage.gke.io/hyperdisk"})
UNSUPPORTED = frozenset({"openshift-storage.ceph.rook.io/bucket", "rook-ceph.ceph.rook.io/bucket",
                         "openshift-storage.noobaa.io/obc", "stork-snapshot", NO_PROVISIONER})


def _params(sc: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (sc.get("parameters") or {}).items()}


def _fs_type(sc: dict[str, Any]) -> str:
    return _params(sc).get("csi.storage.k8s.io/fstype", "").lower()


def _portworx_nfs(sc: dict[str, Any]) -> bool:
    opts = _params(sc).get("sharedv4_mount_options", "").split(",")
    return "vers=3.0" in opts and "nolock" in opts


def _pxd(sc: dict[str, Any]) -> str:
    params = _params(sc)
    if "backend" in params:
        return {"pure_block": "pxd.portworx.com/pure_block",
                "pure_fa_file": "pxd.portworx.com/pure_fa_file"}.get(params["backend"], "pxd.portworx.com")
    return "pxd.portworx.com/nfs" if _portworx_nfs(sc) else "pxd.portworx.com"


def _trident(sc: dict[str, Any]) -> str:
    params = _params(sc)
    backend = params.get("backendType", "")
    if backend.startswith("ontap-nas"):
        return "csi.trident.netapp.io/ontap-nas"
    if backend.startswith("ontap-san"):
        return "csi.trident.netapp.io/ontap-san"
    selector = re.split(r"\s*[;,]\s*", params.get("selector", ""))
    if backend == "google-cloud-netapp-volumes" and "performance=flex" in selector:
        return "csi.trident.netapp.io/gcnv-flex"
    return UNKNOWN


def _longhorn(sc: dict[str, Any]) -> str:
    params = _params(sc)
    if params.get("migratable") == "true":
        return "driver.longhorn.io/migratable"
    if params.get("nfsOptions"):
        return "driver.longhorn.io/nfs"
    if params.get("fsType"):
        return "driver.longhorn.io/fs"
    return "driver.longhorn.io"


def _ibm_file(sc: dict[str, Any]) -> str:
    params = _params(sc)
    profile, rwo = params.get("profile", ""), params.get("vmState") == "true"
    if profile in ("rfs", "dp2"):
        return f"vpc.file.csi.ibm.io/{profile}{'-rwo' if rwo else ''}"
    return "vpc.file.csi.ibm.io"


def _by_param(base: str, param: str, values: dict[str, str], default: str | None = None) -> Callable[..., str]:
    return lambda sc: values.get(_params(sc).get(param, ""), base if default is None else default)


def _nfs_by_fstype(base: str) -> Callable[[dict[str, Any]], str]:
    return lambda sc: f"{base}/nfs" if _fs_type(sc) == "nfs" else base


#: Provisioners whose capabilities depend on the class's parameters: the key to look them up under.
KEY_MAPPERS: dict[str, Callable[[dict[str, Any]], str]] = {
    HPP_CSI: lambda sc: HPP_OVERLAY_CSI if "overlayCSI" in _params(sc) else HPP_CSI,
    "kubernetes.io/portworx-volume": lambda sc: ("kubernetes.io/portworx-volume/nfs" if _portworx_nfs(sc)
                                                 else "kubernetes.io/portworx-volume"),
    "pxd.portworx.com": _pxd,
    "csi.trident.netapp.io": _trident,
    "infinibox-csi-driver": _by_param("", "storage_protocol", {
        "iscsi": "infinibox-csi-driver/iscsiorfibrechannel", "fc": "infinibox-csi-driver/iscsiorfibrechannel",
        "nvme": "infinibox-csi-driver/nvme", "nfs": "infinibox-csi-driver/nfs",
        "nfs_treeq": "infinibox-csi-driver/nfs"}, UNKNOWN),
    "csi.vsphere.vmware.com": lambda sc: ("csi.vsphere.vmware.com/nfs" if "nfs" in _fs_type(sc)
                                          else "csi.vsphere.vmware.com"),
    "csi-unity.dellemc.com": lambda sc: ("csi-unity.dellemc.com/nfs" if _params(sc).get("protocol", "").lower()
                                         == "nfs" else "csi-unity.dellemc.com"),
    "csi-powerstore.dellemc.com": _nfs_by_fstype("csi-powerstore.dellemc.com"),
    "csi-vxflexos.dellemc.com": _nfs_by_fstype("csi-vxflexos.dellemc.com"),
    "csi-powermax.dellemc.com": _nfs_by_fstype("csi-powermax.dellemc.com"),
    "csi.huawei.com": _by_param("csi.huawei.com", "protocol", {"nfs": "csi.huawei.com/nfs"}),
    "driver.longhorn.io": _longhorn,
    "ebs.csi.aws.com": _by_param("ebs.csi.aws.com", "type", {
        "io1": "ebs.csi.aws.com/io1", "io2": "ebs.csi.aws.com/io2", "gp2": "ebs.csi.aws.com/gp",
        "gp3": "ebs.csi.aws.com/gp"}),
    "pd.csi.storage.gke.io": _by_param("pd.csi.storage.gke.io", "type", {
        "hyperdisk-balanced": "pd.csi.storage.gke.io/hyperdisk",
        "hyperdisk-balanced-high-availability": "pd.csi.storage.gke.io/hyperdisk"}),
    "csi.san.synology.com": _by_param("", "protocol", {
        "iscsi": "csi.san.synology.com/iscsi", "": "csi.san.synology.com/iscsi",
        "smb": "csi.san.synology.com/smb", "nfs": "csi.san.synology.com/nfs",
        "nfs_treeq": "csi.san.synology.com/nfs"}, UNKNOWN),
    "vpc.file.csi.ibm.io": _ibm_file,
}


def provisioner_key(sc: dict[str, Any]) -> str:
    provisioner = str(sc.get("provisioner", ""))
    mapper = KEY_MAPPERS.get(provisioner)
    return mapper(sc) if mapper else provisioner


def recognized(sc: dict[str, Any]) -> str:
    """The reason of the profile's Recognized condition."""
    key = provisioner_key(sc)
    if key == UNKNOWN:
        return "UnrecognizedStorageClassParameters"
    return "RecognizedProvisioner" if key in CAPABILITIES else "UnrecognizedProvisioner"


def capabilities(sc: dict[str, Any], pvs: list[dict[str, Any]]) -> list[Capability] | None:
    """The class's capabilities; for `kubernetes.io/no-provisioner`, those of its existing PVs."""
    key = provisioner_key(sc)
    if key == NO_PROVISIONER:
        name = sc.get("metadata", {}).get("name")
        found: list[Capability] = []
        for pv in pvs:
            spec = pv.get("spec") or {}
            if spec.get("storageClassName") != name:
                continue
            for mode in spec.get("accessModes") or []:
                cap = (str(mode), str(spec.get("volumeMode") or FILE))
                if cap not in found:
                    found.append(cap)
        return found or None
    return CAPABILITIES.get(key)
