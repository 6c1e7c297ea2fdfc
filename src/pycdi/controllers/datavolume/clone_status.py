"""A clone DataVolume's phase and progress from its PVC (upstream's clone-controller-base updateStatusPhase and
updateStatusPhaseForPopulator), with the event each phase change records.

Populated targets (`dataSourceRef` to a VolumeCloneSource) show the populator's phase (`cdi.kubevirt.io/clonePhase`:
CSIClone -> CSICloneInProgress, Snapshot -> SnapshotForSmartCloneInProgress, HostClone -> CloneInProgress, ...),
even while the claim is still Pending (it binds only at the end, when its PV is handed over). Claims filled
directly by the host-assisted clone show the workers' phase (`storage.pod.phase`).
"""

from __future__ import annotations

import copy
from typing import Any

from ...api import clone as cl
from ...api import constants as c
from ..clone import common as cm
from . import phases
from .phases import Event

Obj = dict[str, Any]
P = c.DataVolumePhase


def clone_source(dv: Obj) -> tuple[str, str]:
    """(namespace, name) of the source claim; the namespace defaults to the DataVolume's."""
    pvc = ((dv.get("spec") or {}).get("source") or {}).get("pvc") or {}
    return str(pvc.get("namespace") or cm.namespace_of(dv)), str(pvc.get("name") or "")


def phase_event(dv: Obj, phase: str) -> Event | None:
    """setEventForPhase."""
    src_ns, src = clone_source(dv)
    ns, name = cm.namespace_of(dv), cm.name_of(dv)
    table: dict[str, tuple[str, str, str]] = {
        P.CLONE_SCHEDULED: ("Normal", cl.CLONE_SCHEDULED, cl.MSG_CLONE_SCHEDULED.format(src_ns, src, ns, name)),
        P.SNAPSHOT_FOR_SMART_CLONE_IN_PROGRESS: ("Normal", cl.SNAPSHOT_FOR_SMART_CLONE_IN_PROGRESS,
                                                 cl.MSG_SMART_CLONE_IN_PROGRESS.format(src_ns, src)),
        P.CLONE_FROM_SNAPSHOT_SOURCE_IN_PROGRESS: (
            "Normal", cl.CLONE_FROM_SNAPSHOT_SOURCE_IN_PROGRESS,
            cl.MSG_CLONE_FROM_SNAPSHOT_SOURCE_IN_PROGRESS.format("PersistentVolumeClaim", src_ns, src)),
        P.CSI_CLONE_IN_PROGRESS: ("Normal", cl.CSI_CLONE_IN_PROGRESS, cl.MSG_CSI_CLONE_IN_PROGRESS.format(src_ns, src)),
        P.SUCCEEDED: ("Normal", cl.CLONE_SUCCEEDED, cl.MSG_CLONE_SUCCEEDED.format(src_ns, src, ns, name)),
        P.CLONE_IN_PROGRESS: ("Normal", cl.CLONE_IN_PROGRESS, cl.MSG_CLONE_IN_PROGRESS.format(src_ns, src, ns, name)),
        P.PREP_CLAIM_IN_PROGRESS: ("Normal", cl.PREP_CLAIM_IN_PROGRESS, cl.MSG_PREP_CLAIM_IN_PROGRESS.format(ns, name)),
        P.REBIND_IN_PROGRESS: ("Normal", cl.REBIND_IN_PROGRESS, cl.MSG_REBIND_IN_PROGRESS.format(ns, name)),
    }
    found = table.get(phase)
    return Event(*found) if found is not None else None


def _populator_phase(dv: Obj, pvc: Obj, status: Obj) -> Event | None:
    dv_phase = cl.DATA_VOLUME_PHASES.get(cm.annots(pvc).get(cl.ANN_CLONE_PHASE, ""))
    if dv_phase is None:
        return None
    if dv_phase != P.FAILED:  # upstream: the populator retries an error; the Running condition says what it is
        status["phase"] = dv_phase
    return phase_event(dv, dv_phase)


def _host_clone_phase(dv: Obj, pvc: Obj, status: Obj, work: bool) -> Event | None:
    """updateStatusPhase for a claim the host-assisted clone fills directly."""
    ann = cm.annots(pvc)
    pod_phase = ann.get(c.ANN_POD_PHASE)
    if pod_phase != "Succeeded":
        if cl.ANN_CLONE_REQUEST not in ann or not cm.is_bound(pvc) or not work:
            return None
        status["phase"] = P.CLONE_SCHEDULED
    src_ns, src = clone_source(dv)
    ns, name = cm.namespace_of(pvc), cm.name_of(pvc)
    if pod_phase == "Pending":
        return Event("Normal", cl.CLONE_SCHEDULED, cl.MSG_CLONE_SCHEDULED.format(src_ns, src, ns, name))
    if pod_phase == "Running":
        status["phase"] = P.CLONE_IN_PROGRESS
        return Event("Normal", cl.CLONE_IN_PROGRESS, cl.MSG_CLONE_IN_PROGRESS.format(src_ns, src, ns, name))
    if pod_phase == "Failed":
        # pycdi: a clone the controller gave up on (retries exhausted, or it cannot fit) ends the DataVolume.
        if ann.get(c.ANN_IMPORT_FATAL_ERROR) == "true":
            status["phase"] = P.FAILED
        return Event("Warning", cl.CLONE_FAILED, cl.MSG_CLONE_FAILED.format(src_ns, src, ns, name))
    if pod_phase == "Succeeded":
        status["phase"] = P.SUCCEEDED
        status["progress"] = phases.PROGRESS_DONE
        return Event("Normal", cl.CLONE_SUCCEEDED, cl.MSG_CLONE_SUCCEEDED.format(src_ns, src, ns, name))
    return None


def next_status(dv: Obj, pvc: Obj | None, *, wffc: bool, adoption_enabled: bool = False) -> tuple[Obj, Event | None]:
    """updateStatus for clones: the new status (a copy) and the event of a phase change."""
    status: Obj = copy.deepcopy(dv.get("status") or {})
    if pvc is None:
        if c.ANN_PRE_POPULATED in cm.annots(dv) or status.get("phase", "") == P.UNSET:
            status["phase"] = P.PENDING
        return status, None
    if cm.meta(pvc).get("deletionTimestamp"):
        return status, None
    status["claimName"] = cm.name_of(pvc)
    ann = cm.annots(pvc)
    work = phases.requires_work(pvc, dv, adoption_enabled)
    populated = cm.is_clone_target(pvc)
    claim_phase = cm.status(pvc).get("phase", "")
    event: Event | None = None
    if ann.get(c.ANN_POD_PHASE) == "Succeeded" and work and not populated:
        event = _host_clone_phase(dv, pvc, status, work)
    elif claim_phase == "Pending":
        if not work:
            status["phase"] = P.SUCCEEDED
        elif populated:
            if wffc and not ann.get(c.ANN_SELECTED_NODE):
                status["phase"] = P.PENDING_POPULATION
            else:
                event = _populator_phase(dv, pvc, status)
        else:
            status["phase"] = P.WAIT_FOR_FIRST_CONSUMER if wffc else P.PENDING
    elif claim_phase == "Bound":
        if status.get("phase", "") in (P.PENDING, P.WAIT_FOR_FIRST_CONSUMER, P.UNKNOWN):
            status["phase"] = P.PVC_BOUND
        if not work:
            status["phase"] = P.SUCCEEDED
        elif populated:
            event = _populator_phase(dv, pvc, status)
        else:
            event = _host_clone_phase(dv, pvc, status, work)
    elif claim_phase == "Lost":
        status["phase"] = P.FAILED
        event = Event("Warning", phases.ERR_CLAIM_LOST, phases.MSG_CLAIM_LOST.format(cm.name_of(pvc)))
    elif claim_phase:
        status["phase"] = P.UNKNOWN
    try:
        restarts = int(ann.get(c.ANN_POD_RESTARTS, ""))
        if restarts >= 0:
            status["restartCount"] = restarts
    except ValueError:
        pass
    _progress(status, ann, populated)
    return status, event


def _progress(status: Obj, ann: dict[str, str], populated: bool) -> None:
    """reconcileProgressUpdate: a populated claim's progress annotation always; a host clone's until it ends."""
    if not status.get("progress"):
        status["progress"] = phases.PROGRESS_NONE
    if populated:
        status["progress"] = ann.get(c.ANN_POPULATOR_PROGRESS) or phases.PROGRESS_NONE
        return
    if status.get("phase") in (P.SUCCEEDED, P.FAILED):
        return
    if ann.get(c.ANN_POPULATOR_PROGRESS):
        status["progress"] = ann[c.ANN_POPULATOR_PROGRESS]
