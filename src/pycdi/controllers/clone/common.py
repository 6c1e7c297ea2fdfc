"""Small shared facts about claims for the clone controllers: modes, sizes, owners, users of a claim, readiness."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ...api import clone as cl
from ...api import constants as c
from ...api.quantity import QuantityError, quantity_bytes

Obj = dict[str, Any]
FILESYSTEM, BLOCK = "Filesystem", "Block"
CDI_LABEL = ("app", "containerized-data-importer")
FILLING_UP_LABEL = ("alerts.k8s.io/KubePersistentVolumeFillingUp", "disabled")


def meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def annots(obj: Obj | None) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def labels(obj: Obj | None) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def spec(obj: Obj | None) -> Obj:
    return (obj or {}).get("spec") or {}


def status(obj: Obj | None) -> Obj:
    return (obj or {}).get("status") or {}


def name_of(obj: Obj | None) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Obj | None) -> str:
    return str(meta(obj).get("namespace") or "")


def uid_of(obj: Obj | None) -> str:
    return str(meta(obj).get("uid") or "")


def volume_mode(pvc: Obj | None) -> str:
    return str(spec(pvc).get("volumeMode") or FILESYSTEM)


def is_bound(pvc: Obj | None) -> bool:
    return status(pvc).get("phase") == "Bound"


def _bytes(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return quantity_bytes(value)
    except QuantityError:
        return None


def request_bytes(pvc: Obj | None) -> int | None:
    return _bytes(((spec(pvc).get("resources") or {}).get("requests") or {}).get("storage"))


def capacity_bytes(pvc: Obj | None) -> int | None:
    return _bytes((status(pvc).get("capacity") or {}).get("storage"))


def content_type(pvc: Obj | None) -> str:
    """GetPVCContentType: the claim's `storage.contentType`, kubevirt when absent or unknown."""
    value = annots(pvc).get(c.ANN_CONTENT_TYPE)
    return c.ContentType.ARCHIVE.value if value == c.ContentType.ARCHIVE else c.ContentType.KUBEVIRT.value


def controller_ref(obj: Obj | None) -> Obj | None:
    return next((r for r in meta(obj).get("ownerReferences") or [] if r.get("controller")), None)


def data_source_ref(pvc: Obj | None) -> Obj | None:
    for key in ("dataSourceRef", "dataSource"):
        ref = spec(pvc).get(key)
        if isinstance(ref, dict) and ref.get("kind"):
            return ref
    return None


def is_clone_target(pvc: Obj | None) -> bool:
    """The claim is populated by a VolumeCloneSource (upstream's IsPVCDataSourceRefKind)."""
    ref = data_source_ref(pvc)
    return ref is not None and ref.get("kind") == cl.VOLUME_CLONE_SOURCE_KIND and \
        (ref.get("apiGroup") or "") == c.ANN_PREFIX


def claim_names(pod: Obj) -> list[tuple[str, bool]]:
    """(claim, read-only) for each claim volume of a pod."""
    out = []
    for volume in spec(pod).get("volumes") or []:
        ref = volume.get("persistentVolumeClaim")
        if isinstance(ref, dict) and ref.get("claimName"):
            out.append((str(ref["claimName"]), bool(ref.get("readOnly"))))
    return out


def _mounted_read_only(pod: Obj, claim: str) -> bool:
    """Every volume naming the claim is read-only, and so is every mount of it (GetPodsUsingPVCs' allowReadOnly)."""
    names = [str(v.get("name")) for v in spec(pod).get("volumes") or []
             if (v.get("persistentVolumeClaim") or {}).get("claimName") == claim]
    if not names:
        return False
    if all(bool((v.get("persistentVolumeClaim") or {}).get("readOnly")) for v in spec(pod).get("volumes") or []
           if str(v.get("name")) in names):
        return True
    for container in (spec(pod).get("containers") or []) + (spec(pod).get("initContainers") or []):
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") in names and not mount.get("readOnly"):
                return False
        for device in container.get("volumeDevices") or []:
            if device.get("name") in names:
                return False  # a raw device cannot be mounted read-only
    return True


def pods_using(pods: Iterable[Obj], claim: str, *, allow_read_only: bool) -> list[Obj]:
    """GetPodsUsingPVCs: unfinished pods with the claim as a volume (read-only ones left out when allowed)."""
    users = []
    for pod in pods:
        if status(pod).get("phase") in ("Succeeded", "Failed"):
            continue
        if not any(name == claim for name, _ in claim_names(pod)):
            continue
        if allow_read_only and _mounted_read_only(pod, claim):
            continue
        users.append(pod)
    return users


def is_populated(pvc: Obj, data_volume: Callable[[str, str], Obj | None]) -> bool:
    """IsPopulated: a claim a DataVolume controls is populated once that DataVolume succeeded."""
    owner = controller_ref(pvc)
    if owner is None or owner.get("kind") != "DataVolume":
        return True
    dv = data_volume(str(owner.get("name") or ""), namespace_of(pvc))
    return dv is not None and status(dv).get("phase") == c.DataVolumePhase.SUCCEEDED


def owned_by_label(uid: str) -> dict[str, str]:
    return {cl.LABEL_OWNED_BY_UID: uid}


def event_source(pvc: Obj) -> tuple[str, str, str] | None:
    """(kind, namespace, name) of the object a temporary claim's events belong to."""
    ann = annots(pvc)
    ref, kind = ann.get(cl.ANN_EVENT_SOURCE), ann.get(cl.ANN_EVENT_SOURCE_KIND)
    if not ref or not kind or "/" not in ref:
        return None
    ns, _, name = ref.partition("/")
    return kind, ns, name


def split_ref(value: str, default_namespace: str) -> tuple[str, str]:
    """"ns/name" (or "name") -> (ns, name)."""
    if "/" in value:
        ns, _, name = value.partition("/")
        return ns or default_namespace, name
    return default_namespace, value


def tmp_claim_name(target: Obj) -> str:
    return f"{cl.TMP_PVC_PREFIX}-{uid_of(target)}"


def tmp_snapshot_name(target: Obj) -> str:
    return f"{cl.TMP_SNAPSHOT_PREFIX}-{uid_of(target)}"


def source_pod_name(target: Obj) -> str:
    return f"{uid_of(target)}{cl.SOURCE_POD_SUFFIX}"


def flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "t", "true")
