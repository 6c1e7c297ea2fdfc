"""A claim's data source (clone of a PVC, restore of a VolumeSnapshot), checked with external-provisioner's rules.

Each refusal carries external-provisioner's message, so `kubectl describe pvc` reads as on a CSI cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycdi.api.quantity import quantity_bytes

from ..apiserver.service import ObjectService
from ..control import volumeutil as vu
from .hostpathprovisioner import volume_of
from .pools import PROVISIONERS

Obj = dict[str, Any]
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
SNAPSHOT_KEY = f"{SNAPSHOT_GROUP}/volumesnapshots"
CONTENT_KEY = f"{SNAPSHOT_GROUP}/volumesnapshotcontents"
PVC_KIND, SNAPSHOT_KIND = "PersistentVolumeClaim", "VolumeSnapshot"


@dataclass(frozen=True)
class VolumeSource:
    kind: str
    name: str
    #: Where the source's bytes are: a directory (Filesystem) or a device/file (Block).
    data: Path = Path()
    #: A kind we do not handle: an external populator fills the volume.
    populator: bool = False


class SourceError(Exception):
    """The source cannot be used (yet); `kind`/`name` say which object to watch for a change."""

    def __init__(self, kind: str, name: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


def data_source(pvc: Obj) -> Obj | None:
    """dataSourceRef wins over dataSource, as the API server mirrors them."""
    spec = vu.spec(pvc)
    for field in ("dataSourceRef", "dataSource"):
        value = spec.get(field)
        if isinstance(value, dict) and value.get("kind"):
            return value
    return None


def resolve_source(service: ObjectService, pvc: Obj, sc: Obj) -> VolumeSource | None:
    ref = data_source(pvc)
    if ref is None:
        return None
    kind, name = str(ref.get("kind")), str(ref.get("name") or "")
    group = str(ref.get("apiGroup") or "")
    if not name:
        raise SourceError(kind, name, f"the PVC source not found for PVC {vu.name_of(pvc)}")
    if kind == PVC_KIND and not group:
        return _clone_source(service, pvc, sc, ref)
    if kind == SNAPSHOT_KIND:
        if group != SNAPSHOT_GROUP:
            raise SourceError(kind, name, f"the PVC source does not belong to the right APIGroup. "
                                          f"Expected {SNAPSHOT_GROUP}, Got {group}")
        return _snapshot_source(service, pvc, sc, name)
    return VolumeSource(kind, name, populator=True)


def _handle_error(kind: str, name: str, why: str) -> SourceError:
    return SourceError(kind, name, f"error getting handle for DataSource Type {kind} by Name {name}: {why}")


def _clone_source(service: ObjectService, pvc: Obj, sc: Obj, ref: Obj) -> VolumeSource:
    namespace = str(vu.meta(pvc).get("namespace"))
    name = str(ref["name"])
    source_ns = str(ref.get("namespace") or namespace)
    if source_ns != namespace:
        # Cross-namespace sources need a ReferenceGrant, which this cluster does not serve.
        raise SourceError(PVC_KIND, name, f"accessing {source_ns}/{name} of PersistentVolumeClaim dataSource "
                                          f"from {namespace}/{vu.name_of(pvc)} isn't allowed")

    def fail(why: str) -> SourceError:
        return _handle_error(PVC_KIND, name, why)

    source = service.store.get(vu.PVC_KEY, namespace, name)
    if source is None:
        raise fail(f'error getting PVC {name} (namespace "{namespace}") from api server: '
                   f'persistentvolumeclaims "{name}" not found')
    phase = vu.status(source).get("phase")
    if phase != "Bound":
        raise fail(f"the PVC DataSource {name} must have a status of Bound.  Got {{{phase}}}")
    if vu.meta(source).get("deletionTimestamp"):
        raise fail(f"the PVC DataSource {name} is currently being deleted")
    source_class, claim_class = vu.claim_class(source), vu.claim_class(pvc)
    if not source_class:
        raise fail(f"the source PVC ({name}) storageclass cannot be empty")
    if not claim_class:
        raise fail(f"the requested PVC ({vu.name_of(pvc)}) storageclass cannot be empty")
    if source_class != claim_class:
        raise fail(f"the source PVC and destination PVCs must be in the same storage class for cloning.  "
                   f"Source is in {source_class}, but new PVC is in {claim_class}")
    requested, source_size = vu.request_bytes(pvc), vu.request_bytes(source)
    if requested < source_size:
        raise fail(f"error, new PVC request must be greater than or equal in size to the specified PVC data "
                   f"source, requested {requested} but source is {source_size}")
    volume_name = str(vu.spec(source).get("volumeName") or "")
    if not volume_name:
        raise fail(f"volume name is empty in source PVC {name}")
    pv = service.store.get(vu.PV_KEY, "", volume_name)
    ref_ok = pv is not None and (vu.spec(pv).get("claimRef") or {}).get("uid") == vu.uid_of(source)
    if (pv is None or not ref_ok or vu.status(pv).get("phase") != "Bound"
            or vu.annots(pv).get(vu.ANN_PROVISIONED_BY) not in PROVISIONERS):
        raise fail("claim in dataSource not bound or invalid")
    source_mode, mode = vu.volume_mode(pv), vu.volume_mode(pvc)
    if source_mode != mode:
        raise fail(f"the source PVC and destination PVCs must have the same volume mode for cloning.  "
                   f"Source is {source_mode}, but new PVC requested {mode}")
    volume = volume_of(pv)
    if volume is None:
        raise fail("claim in dataSource not bound or invalid")
    return VolumeSource(PVC_KIND, name, volume.path if mode == "Block" else volume.data)


def _snapshot_source(service: ObjectService, pvc: Obj, sc: Obj, name: str) -> VolumeSource:
    namespace = str(vu.meta(pvc).get("namespace"))

    def fail(why: str) -> SourceError:
        return _handle_error(SNAPSHOT_KIND, name, why)

    snapshot = service.store.get(SNAPSHOT_KEY, namespace, name)
    if snapshot is None:
        raise fail(f"error getting snapshot {name} from api server: "
                   f'volumesnapshots.{SNAPSHOT_GROUP} "{name}" not found')
    if vu.meta(snapshot).get("deletionTimestamp"):
        raise fail(f"snapshot {name} is currently being deleted")
    content_name = vu.status(snapshot).get("boundVolumeSnapshotContentName")
    content = service.store.get(CONTENT_KEY, "", str(content_name)) if content_name else None
    if content is None or (vu.spec(content).get("volumeSnapshotRef") or {}).get("uid") != vu.uid_of(snapshot):
        raise fail(f"snapshot {name} not bound")
    if vu.spec(content).get("driver") != sc.get("provisioner") and not (
            vu.spec(content).get("driver") in PROVISIONERS and sc.get("provisioner") in PROVISIONERS):
        raise fail(f"snapshot {name} not bound")
    if vu.status(snapshot).get("readyToUse") is not True:
        raise fail(f"snapshot {name} is not Ready")
    handle = vu.status(content).get("snapshotHandle")
    if not handle:
        raise fail(f"snapshot handle {name} is not available")
    restore = vu.status(snapshot).get("restoreSize")
    if restore is not None:
        requested, restore_size = vu.request_bytes(pvc), quantity_bytes(restore)
        if requested < restore_size:
            raise fail(f"requested volume size {requested} is less than the size {restore_size} "
                       f"for the source snapshot {name}")
    source_mode = str(vu.spec(content).get("sourceVolumeMode") or "Filesystem")
    if source_mode != vu.volume_mode(pvc):
        raise fail(f"the source snapshot and destination PVC must have the same volume mode.  "
                   f"Source is {source_mode}, but new PVC requested {vu.volume_mode(pvc)}")
    return VolumeSource(SNAPSHOT_KIND, name, Path(str(handle)))
