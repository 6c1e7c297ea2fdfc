"""Printers for storage kinds: PersistentVolumeClaims, PersistentVolumes and StorageClasses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .age import age
from .printers import Obj, Printer, age_col, as_dict, as_list, as_str, col, meta, name_col, sub
from .quantity import canonical

_BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
_DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
# GetAccessModesAsString prints modes in this fixed order whatever order the object lists them in.
_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
          ("ReadWriteOncePod", "RWOP"))


def access_modes(modes: Any) -> str:
    present = set(as_list(modes))
    return ",".join(short for mode, short in _MODES if mode in present)


def _class_name(obj: Obj) -> str:
    """The beta annotation still wins over spec.storageClassName, as helper.GetPersistentVolume*Class."""
    annotations = as_dict(meta(obj).get("annotations"))
    if _BETA_CLASS_ANNOTATION in annotations:
        return as_str(annotations[_BETA_CLASS_ANNOTATION])
    return as_str(sub(obj, "spec", "storageClassName"))


def _unset(value: Any) -> str:
    return value if isinstance(value, str) else "<unset>"


def _pvc_cells(pvc: Obj, now: datetime) -> list[Any]:
    spec, status = as_dict(pvc.get("spec")), as_dict(pvc.get("status"))
    phase = "Terminating" if meta(pvc).get("deletionTimestamp") is not None else as_str(status.get("phase"))
    capacity = modes = ""
    # Capacity and modes come from status, and only once the claim names its volume.
    if as_str(spec.get("volumeName")):
        modes = access_modes(status.get("accessModes"))
        capacity = canonical(sub(status, "capacity", "storage") or "0")
    return [as_str(meta(pvc).get("name")), phase, as_str(spec.get("volumeName")), capacity, modes,
            _class_name(pvc), _unset(spec.get("volumeAttributesClassName")),
            age(meta(pvc).get("creationTimestamp"), now), _unset(spec.get("volumeMode"))]


PVCS = Printer((
    name_col(),
    col("Status", "phase represents the current phase of PersistentVolumeClaim."),
    col("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
    col("Capacity", "capacity represents the actual resources of the underlying volume."),
    col("Access Modes", "accessModes contains the actual access modes the volume backing the PVC has."),
    col("StorageClass", "StorageClass of the pvc"),
    # Real 1.32 servers show this column by default; the default claim view stays the seven columns users know
    # (and the issue names), with the class in `-o wide`.
    col("VolumeAttributesClass", "VolumeAttributesClass of the pvc", priority=1),
    age_col(),
    col("VolumeMode", "volumeMode defines what type of volume is required by the claim.", priority=1),
), _pvc_cells)


def _pv_cells(pv: Obj, now: datetime) -> list[Any]:
    spec, status = as_dict(pv.get("spec")), as_dict(pv.get("status"))
    ref = spec.get("claimRef")
    claim = f"{as_str(ref.get('namespace'))}/{as_str(ref.get('name'))}" if isinstance(ref, dict) else ""
    phase = "Terminating" if meta(pv).get("deletionTimestamp") is not None else as_str(status.get("phase"))
    return [as_str(meta(pv).get("name")), canonical(sub(spec, "capacity", "storage") or "0"),
            access_modes(spec.get("accessModes")), as_str(spec.get("persistentVolumeReclaimPolicy")),
            phase, claim, _class_name(pv), _unset(spec.get("volumeAttributesClassName")),
            as_str(status.get("reason")), age(meta(pv).get("creationTimestamp"), now),
            _unset(spec.get("volumeMode"))]


PVS = Printer((
    name_col(),
    col("Capacity", "capacity is the description of the persistent volume's resources and capacity."),
    col("Access Modes", "accessModes contains all ways the volume can be mounted."),
    col("Reclaim Policy", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when "
        "released from its claim."),
    col("Status", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
    col("Claim", "claimRef is part of a bi-directional binding between PersistentVolume and "
        "PersistentVolumeClaim."),
    col("StorageClass", "StorageClass of the pv"),
    col("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
    col("Reason", "reason is a brief CamelCase string that describes any failure and is meant for machine "
        "parsing and tidy display in the CLI."),
    age_col(),
    col("VolumeMode", "volumeMode defines if a volume is intended to be used with a formatted filesystem or "
        "to remain in raw block state.", priority=1),
), _pv_cells)


def is_default_class(obj: Obj) -> bool:
    annotations = as_dict(meta(obj).get("annotations"))
    return any(annotations.get(key) == "true" for key in _DEFAULT_CLASS_ANNOTATIONS)


def _sc_cells(sc: Obj, now: datetime) -> list[Any]:
    name = as_str(meta(sc).get("name"))
    if is_default_class(sc):
        name += " (default)"
    expansion = sc.get("allowVolumeExpansion")
    return [name, as_str(sc.get("provisioner")), as_str(sc.get("reclaimPolicy")) or "Delete",
            as_str(sc.get("volumeBindingMode")) or "Immediate",
            expansion if isinstance(expansion, bool) else False,
            age(meta(sc).get("creationTimestamp"), now)]


STORAGECLASSES = Printer((
    name_col(),
    col("Provisioner", "provisioner indicates the type of the provisioner."),
    col("ReclaimPolicy", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned "
        "PersistentVolumes of this storage class. Defaults to Delete."),
    col("VolumeBindingMode", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned "
        "and bound.  When unset, VolumeBindingImmediate is used."),
    col("AllowVolumeExpansion", "allowVolumeExpansion shows whether the storage class allow volume expand."),
    age_col(),
), _sc_cells)
