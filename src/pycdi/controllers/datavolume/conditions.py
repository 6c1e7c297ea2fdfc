"""DataVolume conditions Bound, Ready and Running, from the PVC and its annotations, as upstream's conditions.go."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...api import constants as c

Obj = dict[str, Any]
Conditions = list[dict[str, Any]]

READY, BOUND, RUNNING = "Ready", "Bound", "Running"
TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Conditions, type_: str) -> dict[str, Any] | None:
    return next((cond for cond in conditions if cond.get("type") == type_), None)


def update(conditions: Conditions, type_: str, status: str, message: str, reason: str) -> Conditions:
    """updateCondition: a status change moves both times; a new message or reason only the heartbeat."""
    cond = find(conditions, type_)
    if cond is None:
        cond = {"type": type_}
        conditions.append(cond)
    if cond.get("status") != status:
        stamp = now()
        cond.update(lastTransitionTime=stamp, lastHeartbeatTime=stamp, message=message, reason=reason)
    elif cond.get("message", "") != message or cond.get("reason", "") != reason:
        cond.update(message=message, reason=reason, lastHeartbeatTime=now())
    cond["status"] = status
    # Empty strings are omitted on the wire (omitempty), as upstream's objects are.
    for key in ("message", "reason"):
        if not cond.get(key):
            cond.pop(key, None)
    return conditions


def update_ready(conditions: Conditions, status: str, message: str, reason: str) -> Conditions:
    return update(conditions, READY, status, message, reason)


def _status_of(value: str) -> str:
    lowered = value.lower()
    return TRUE if lowered == "true" else FALSE if lowered == "false" else UNKNOWN


def update_running(conditions: Conditions, anno: dict[str, str]) -> Conditions:
    """updateRunningCondition, with the clone source's state combined in as upstream does."""
    msg, reason = anno.get(c.ANN_RUNNING_CONDITION_MESSAGE, ""), anno.get(c.ANN_RUNNING_CONDITION_REASON, "")
    src_msg = anno.get(c.ANN_SOURCE_RUNNING_CONDITION_MESSAGE, "")
    src_reason = anno.get(c.ANN_SOURCE_RUNNING_CONDITION_REASON, "")
    has_source = c.ANN_SOURCE_RUNNING_CONDITION in anno
    source = _status_of(anno.get(c.ANN_SOURCE_RUNNING_CONDITION, ""))
    if anno.get(c.ANN_POD_SCHEDULABLE) == "false":
        return update(conditions, RUNNING, FALSE, "Importer pod cannot be scheduled", c.REASON_UNSCHEDULABLE)
    if c.ANN_RUNNING_CONDITION not in anno:
        return update(conditions, RUNNING, FALSE, msg, reason)
    target = _status_of(anno[c.ANN_RUNNING_CONDITION])
    if target == TRUE:
        if not has_source or source == TRUE:
            update(conditions, RUNNING, TRUE, msg, reason)
            return update_ready(conditions, FALSE, "", c.REASON_TRANSFER_RUNNING)
        return update(conditions, RUNNING, FALSE if source == FALSE else UNKNOWN, src_msg, src_reason)
    if target == FALSE:
        if not has_source or source == TRUE:
            return update(conditions, RUNNING, FALSE, msg, reason)
        return update(conditions, RUNNING, FALSE if source == FALSE else UNKNOWN,
                      f"{msg} and {src_msg}", f"{reason} and {src_reason}")
    return update(conditions, RUNNING, UNKNOWN, msg, reason)


def _pvc_condition(anno: dict[str, str]) -> tuple[str, str, str] | None:
    """The Bound override a controller put on the PVC: (status, message, reason)."""
    if c.ANN_BOUND_CONDITION not in anno:
        return None
    return (_status_of(anno[c.ANN_BOUND_CONDITION]), anno.get(c.ANN_BOUND_CONDITION_MESSAGE, ""),
            anno.get(c.ANN_BOUND_CONDITION_REASON, ""))


def update_bound(conditions: Conditions, pvc: Obj | None, message: str, reason: str) -> Conditions:
    if pvc is None:
        update(conditions, BOUND, FALSE, message or "No PVC found", reason or c.REASON_NOT_FOUND)
        return update_ready(conditions, FALSE, "", "")
    meta = pvc.get("metadata") or {}
    name, anno = meta.get("name", ""), meta.get("annotations") or {}
    override = _pvc_condition(anno)
    phase = (pvc.get("status") or {}).get("phase", "")
    if phase == "Bound":
        if override is None or override[0] == TRUE:
            return update(conditions, BOUND, TRUE, f"PVC {name} Bound", c.REASON_BOUND)
        update(conditions, BOUND, FALSE, override[1], override[2])
    elif phase == "Pending":
        if override is None or override[0] == TRUE:
            update(conditions, BOUND, FALSE, f"PVC {name} Pending", c.REASON_PENDING)
        else:
            prime = anno.get(c.ANN_PVC_PRIME_NAME)
            prime_text = f"[{prime}] : " if prime is not None else ""
            update(conditions, BOUND, FALSE, f"target PVC {name} Pending and {prime_text}{override[1]}", override[2])
    elif phase == "Lost":
        update(conditions, BOUND, FALSE, "Claim Lost", c.REASON_CLAIM_LOST)
    else:
        update(conditions, BOUND, FALSE, "", "")
    return update_ready(conditions, FALSE, "", "")


def update_all(status: Obj, pvc: Obj | None, reason: str = "", message: str = "") -> None:
    """updateConditions: Bound from the PVC, Ready from the phase, Running from the PVC's annotations."""
    conditions: Conditions = status.setdefault("conditions", [])
    phase = status.get("phase", "")
    ready = TRUE if phase == c.DataVolumePhase.SUCCEEDED else UNKNOWN if phase == c.DataVolumePhase.UNKNOWN else FALSE
    anno = ((pvc or {}).get("metadata") or {}).get("annotations") or {}
    update_bound(conditions, pvc, message, reason)
    update_ready(conditions, ready, message, reason)
    update_running(conditions, anno)
