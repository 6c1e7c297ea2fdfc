"""An ObjectTransfer's names, its Complete condition (with upstream's message/reason quirk) and the target object
rebuilt from the source saved in `status.data`: pure functions over plain dicts."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from ...api import constants as c

Obj = dict[str, Any]
P = c.ObjectTransferPhase

KIND_PVC = "PersistentVolumeClaim"
KIND_DV = "DataVolume"
# status.data keys (upstream's).
DATA_SOURCE = "source"
DATA_PV_NAME = "pvName"
DATA_PV_RECLAIM = "pvReclaim"
DATA_PVC_NAME = "pvcName"
#: The annotation kube's binder puts on a claim once bound; a recreated claim must go through binding again.
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
PVC_CLONE_FINALIZER = "provisioner.storage.kubernetes.io/cloning-protection"
#: The external-snapshotter's finalizer on a claim being snapshotted.
PVC_SNAPSHOT_FINALIZER = "snapshot.storage.kubernetes.io/pvc-as-source-protection"
#: Upstream CDI checks this spelling (`k8s.io`), which no snapshotter sets; kept so its users' habits still hold.
PVC_SNAPSHOT_FINALIZER_UPSTREAM = "snapshot.storage.k8s.io/pvc-as-source-protection"
PROTECTION_FINALIZERS = (PVC_CLONE_FINALIZER, PVC_SNAPSHOT_FINALIZER, PVC_SNAPSHOT_FINALIZER_UPSTREAM)

TRUE, FALSE = "True", "False"
# Condition messages (upstream's pkg/controller/transfer): the state goes into `message`, a detail into `reason`.
MSG_INITIALIZING = "Initializing"
MSG_PENDING = "Pending"
MSG_RUNNING = "Running"
MSG_ERROR = "Error"
MSG_COMPLETE = "Transfer complete"
MSG_NO_SOURCE = "No source"
MSG_PVC_NOT_BOUND = "PVC not bound"
MSG_PV_NOT_BOUND = "PV not bound"
MSG_PODS_USING_PVC = "Pods using PVC"
MSG_REQUIRED_ANNOTATION = "Required annotation missing"
MSG_IN_USE = "Source in use by another transfer"
MSG_PV_NAME_MISSING = "PV name missing"
MSG_WRONG_PVC = "PV bound to wrong PVC"
MSG_WAITING_TARGET_BOUND = "Waiting for target to be bound"
MSG_SOURCE_NOT_POPULATED = "Source not populated"
MSG_PODS_USING_DV_PVC = "Pods using DataVolume PVC"
MSG_DV_NO_PVC = "Source DV has no PVC"
MSG_PVC_TRANSFER = "PVC transfer in progress"
MSG_NO_TRANSFERRED_PVC = "Transferred PVC does not exist"
MSG_WAITING_TARGET_DV = "Waiting for target DataVolume"
MSG_POPULATED_FOR_OTHER = "PVC populated for a different DataVolume"
#: Errors no retry can fix: an OT showing one is not retried, and may be deleted without finishing.
PERMANENT_ERRORS = (MSG_PV_NAME_MISSING, MSG_WRONG_PVC, MSG_NO_TRANSFERRED_PVC, MSG_POPULATED_FOR_OTHER)


def finalizer_message(finalizer: str) -> str:
    return f"PVC has finalizer: {finalizer}"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spec(ot: Obj) -> Obj:
    return ot.get("spec") or {}


def source(ot: Obj) -> Obj:
    return spec(ot).get("source") or {}


def target_namespace(ot: Obj) -> str:
    """getTransferTargetNamespace: the target's namespace, else the source's."""
    ns = (spec(ot).get("target") or {}).get("namespace")
    return str(ns) if ns is not None else str(source(ot).get("namespace") or "")


def target_name(ot: Obj) -> str:
    name = (spec(ot).get("target") or {}).get("name")
    return str(name) if name is not None else str(source(ot).get("name") or "")


def kind(ot: Obj) -> str:
    """The source kind, case-insensitively as upstream's getHandler: PersistentVolumeClaim, DataVolume or ""."""
    value = str(source(ot).get("kind") or "").lower()
    return {KIND_PVC.lower(): KIND_PVC, KIND_DV.lower(): KIND_DV}.get(value, "")


def find_condition(status: Obj) -> Obj | None:
    return next((cond for cond in status.get("conditions") or [] if cond.get("type") == c.OBJECT_TRANSFER_COMPLETE),
                None)


def set_condition(status: Obj, state: str, message: str, reason: str = "") -> bool:
    """setCondition: True when the condition changed (then both times move). Upstream's quirk kept: callers put
    the state ("Running", "No source", ...) in `message` and a detail (an error's text) in `reason`."""
    conditions: list[Obj] = status.setdefault("conditions", [])
    cond = find_condition(status)
    changed = cond is None
    if cond is None:
        cond = {"type": c.OBJECT_TRANSFER_COMPLETE}
        conditions.append(cond)
    if (cond.get("status"), cond.get("message", ""), cond.get("reason", "")) != (state, message, reason):
        changed = True
    if changed:
        stamp = now()
        cond.update(status=state, message=message, reason=reason, lastTransitionTime=stamp, lastHeartbeatTime=stamp)
        for key in ("message", "reason"):  # omitempty, as upstream's objects are written
            if not cond[key]:
                del cond[key]
    return changed


def condition_message(ot: Obj) -> str:
    return str((find_condition(ot.get("status") or {}) or {}).get("message", ""))


def without_status(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    return out


def saved_source(ot: Obj) -> Obj | None:
    raw = ((ot.get("status") or {}).get("data") or {}).get(DATA_SOURCE)
    if not raw:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None


def target_object(ot: Obj, drop_annotations: tuple[str, ...] = ()) -> Obj:
    """createObjectTransferTarget: the saved source, renamed into the target; identity and bookkeeping cleared,
    owners dropped when the namespace changes, the transfer's own annotation (and `drop_annotations`) removed."""
    obj = saved_source(ot)
    if obj is None:
        raise ValueError("source spec missing")
    meta = obj.setdefault("metadata", {})
    meta["namespace"] = target_namespace(ot)
    meta["name"] = target_name(ot)
    for key in ("generateName", "uid", "resourceVersion", "generation", "selfLink", "creationTimestamp",
                "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
        meta.pop(key, None)
    target_ns = (spec(ot).get("target") or {}).get("namespace")
    if target_ns is not None and target_ns != source(ot).get("namespace"):
        meta.pop("ownerReferences", None)
    annotations = meta.get("annotations") or {}
    for key in (c.ANN_OBJECT_TRANSFER_NAME, *drop_annotations):
        annotations.pop(key, None)
    obj.pop("status", None)
    return obj


def has_required_annotations(ot: Obj, obj: Obj) -> bool:
    present = (obj.get("metadata") or {}).get("annotations") or {}
    wanted = source(ot).get("requiredAnnotations") or {}
    return all(key in present and present[key] == value for key, value in wanted.items())


def unbound(pvc: Obj) -> bool:
    """IsUnbound: no volume named, or not Bound yet."""
    return not (pvc.get("spec") or {}).get("volumeName") or (pvc.get("status") or {}).get("phase") != "Bound"


def claim_ref_is(pv: Obj, namespace: str, name: str) -> bool:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return bool(ref) and ref.get("namespace", "") == namespace and ref.get("name", "") == name


def pods_using(pods: list[Obj], claim: str) -> list[Obj]:
    """GetPodsUsingPVCs (read-only use counts as use): unfinished pods naming the claim in a volume."""
    out = []
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if ((volume.get("persistentVolumeClaim") or {}).get("claimName")) == claim:
                out.append(pod)
                break
    return out


def child_name(ot: Obj) -> str:
    """The PVC transfer a DataVolume transfer creates (upstream's `pvc-transfer-<uid>`)."""
    return f"pvc-transfer-{(ot.get('metadata') or {}).get('uid', '')}"


def dv_claim_name(dv: Obj) -> str:
    """getDataVolumeClaimName: the PVC a DataVolume's data lives in."""
    annotations = (dv.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(c.ANN_POPULATED_FOR) or (dv.get("metadata") or {}).get("name", ""))
