"""Shared facts about PVs, PVCs and StorageClasses: annotation keys, sizes, classes, node affinity, status writes."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from pycdi.api.quantity import quantity_bytes

from ..apiserver import errors
from ..apiserver.resources import ResourceInfo
from ..apiserver.selectors import SelectorError, label_selector_from_dict
from ..apiserver.service import ObjectService, WriteContext, now_rfc3339
from .loops import builtin

Obj = dict[str, Any]

PVC_KEY = "core/persistentvolumeclaims"
PV_KEY = "core/persistentvolumes"
POD_KEY = "core/pods"
SC_KEY = "storage.k8s.io/storageclasses"
NODE_KEY = "core/nodes"

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
CLONE_PROTECTION = "provisioner.storage.kubernetes.io/cloning-protection"


def meta(obj: Mapping[str, Any]) -> Obj:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def annots(obj: Mapping[str, Any]) -> dict[str, str]:
    value = meta(obj).get("annotations")
    return value if isinstance(value, dict) else {}


def spec(obj: Mapping[str, Any]) -> Obj:
    value = obj.get("spec")
    return value if isinstance(value, dict) else {}


def status(obj: Mapping[str, Any]) -> Obj:
    value = obj.get("status")
    return value if isinstance(value, dict) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("uid") or "")


def claim_class(pvc: Mapping[str, Any]) -> str | None:
    """The claim's class as kube reads it: the beta annotation first, then spec (None: unset)."""
    ann = annots(pvc).get(ANN_BETA_STORAGE_CLASS)
    if ann is not None:
        return str(ann)
    value = spec(pvc).get("storageClassName")
    return None if value is None else str(value)


def volume_class(pv: Mapping[str, Any]) -> str:
    ann = annots(pv).get(ANN_BETA_STORAGE_CLASS)
    if ann is not None:
        return str(ann)
    return str(spec(pv).get("storageClassName") or "")


def volume_mode(obj: Mapping[str, Any]) -> str:
    return str(spec(obj).get("volumeMode") or "Filesystem")


def size_bytes(value: Any) -> int:
    try:
        return quantity_bytes(value) if value is not None else 0
    except (ValueError, ArithmeticError):
        return 0


def request_bytes(pvc: Mapping[str, Any]) -> int:
    resources = spec(pvc).get("resources") or {}
    return size_bytes((resources.get("requests") or {}).get("storage"))


def request_quantity(pvc: Mapping[str, Any]) -> str:
    resources = spec(pvc).get("resources") or {}
    return str((resources.get("requests") or {}).get("storage") or "0")


def pv_capacity_bytes(pv: Mapping[str, Any]) -> int:
    return size_bytes((spec(pv).get("capacity") or {}).get("storage"))


def claim_capacity_bytes(pvc: Mapping[str, Any]) -> int:
    return size_bytes((status(pvc).get("capacity") or {}).get("storage"))


def is_default_class(sc: Mapping[str, Any]) -> bool:
    ann = annots(sc)
    return ann.get(ANN_DEFAULT_CLASS) == "true" or ann.get(ANN_BETA_DEFAULT_CLASS) == "true"


def default_class(service: ObjectService) -> Obj | None:
    """The default StorageClass; with several, the newest wins (kube >= 1.26)."""
    defaults = [sc for sc in service.store.iter_objects(SC_KEY) if is_default_class(sc)]
    if not defaults:
        return None
    defaults.sort(key=lambda sc: (str(meta(sc).get("creationTimestamp") or ""), name_of(sc)))
    return defaults[-1]


def storage_class(service: ObjectService, name: str) -> Obj | None:
    return service.store.get(SC_KEY, "", name) if name else None


def pods_using_claim(service: ObjectService, namespace: str, claim: str) -> list[Obj]:
    """Pods naming the claim in spec.volumes that have not terminated."""
    out = []
    for pod in service.store.iter_objects(POD_KEY, namespace):
        if status(pod).get("phase") in ("Succeeded", "Failed"):
            continue
        if claim in claims_of_pod(pod):
            out.append(pod)
    return out


def claims_of_pod(pod: Mapping[str, Any]) -> list[str]:
    out = []
    for volume in spec(pod).get("volumes") or []:
        if isinstance(volume, dict):
            pvc = volume.get("persistentVolumeClaim")
            if isinstance(pvc, dict) and pvc.get("claimName"):
                out.append(str(pvc["claimName"]))
            ephemeral = volume.get("ephemeral")
            if isinstance(ephemeral, dict) and volume.get("name"):
                # A generic ephemeral volume's claim is named <pod>-<volume>.
                out.append(f"{name_of(pod)}-{volume['name']}")
    return out


# ---- node affinity ---------------------------------------------------------------------------------------

def node_labels(service: ObjectService, node: str) -> dict[str, str]:
    """The node's labels (the Node object's, else the well-known ones the node agent sets)."""
    labels = {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    obj = service.store.get(NODE_KEY, "", node)
    if obj is not None:
        labels.update({str(k): str(v) for k, v in (meta(obj).get("labels") or {}).items()})
    return labels


def _requirement_matches(expr: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, op = str(expr.get("key", "")), str(expr.get("operator", ""))
    wanted = [str(v) for v in expr.get("values") or []]
    have = values.get(key)
    if op == "In":
        return have is not None and have in wanted
    if op == "NotIn":
        return have is None or have not in wanted
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and len(wanted) == 1:
        try:
            return int(have) > int(wanted[0]) if op == "Gt" else int(have) < int(wanted[0])
        except ValueError:
            return False
    return False


def node_affinity_matches(pv: Mapping[str, Any], node: str, labels: Mapping[str, str]) -> bool:
    """Whether a PV's spec.nodeAffinity.required admits the node (terms ORed, expressions ANDed)."""
    required = (spec(pv).get("nodeAffinity") or {}).get("required")
    if not isinstance(required, dict):
        return True
    terms = [t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]
    for term in terms:
        exprs = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not exprs and not fields:
            continue  # an empty term matches no objects
        if all(_requirement_matches(e, labels) for e in exprs) and all(
                _requirement_matches(f, {"metadata.name": node}) for f in fields):
            return True
    return False


def selector_matches(pvc: Mapping[str, Any], pv: Mapping[str, Any]) -> bool:
    sel = spec(pvc).get("selector")
    if sel is None:
        return True
    try:
        return bool(label_selector_from_dict(sel).matches(meta(pv).get("labels") or {}))
    except SelectorError:
        return False


def access_modes_cover(pv: Mapping[str, Any], pvc: Mapping[str, Any]) -> bool:
    have = set(spec(pv).get("accessModes") or [])
    return set(spec(pvc).get("accessModes") or []) <= have


# ---- writes ----------------------------------------------------------------------------------------------

def info(service: ObjectService, plural: str, group: str = "") -> ResourceInfo:
    return builtin(service, group, plural)


async def write_status(service: ObjectService, info_: ResourceInfo, obj: Obj, new_status: Obj) -> Obj:
    """Replace status through the status subresource; a phase change stamps lastPhaseTransitionTime."""
    body = copy.deepcopy(obj)
    old = status(obj)
    if new_status.get("phase") != old.get("phase") and info_.plural in ("persistentvolumes",
                                                                        "persistentvolumeclaims"):
        new_status = {**new_status, "lastPhaseTransitionTime": now_rfc3339()}
    body["status"] = new_status
    if body["status"] == old:
        return obj
    m = meta(obj)
    return await service.update(info_, str(m.get("namespace") or ""), name_of(obj), body, WriteContext(),
                                "status", require_rv=True)


async def write(service: ObjectService, info_: ResourceInfo, obj: Obj) -> Obj:
    m = meta(obj)
    return await service.update(info_, str(m.get("namespace") or ""), name_of(obj), obj, WriteContext(),
                                require_rv=True)


async def add_finalizer(service: ObjectService, info_: ResourceInfo, namespace: str, name: str,
                        finalizer: str) -> bool:
    """Add a finalizer unless present or the object is going; True if the object has it afterwards."""
    for _ in range(5):
        obj = service.find(info_, namespace, name)
        if obj is None:
            return False
        fins = list(meta(obj).get("finalizers") or [])
        if finalizer in fins:
            return True
        if meta(obj).get("deletionTimestamp"):
            return False
        obj["metadata"]["finalizers"] = [*fins, finalizer]
        try:
            await service.update(info_, namespace, name, obj, WriteContext(), require_rv=True)
            return True
        except errors.APIError as e:
            if e.code == 404:
                return False
            if e.code != 409:
                raise
    raise errors.conflict(info_.group, info_.plural, name)


def first(items: Iterable[Obj]) -> Obj | None:
    return next(iter(items), None)
