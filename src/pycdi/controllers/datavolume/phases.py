"""A DataVolume's status phase, progress and restart count from its PVC, as upstream's updateStatus and the import
controller's updateStatusPhase, with the event each phase change records."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ...api import constants as c

Obj = dict[str, Any]
P = c.DataVolumePhase
#: The DataVolume UID on the PVCs the controller creates (upstream's AnnCreatedForDataVolume).
ANN_CREATED_FOR_DATA_VOLUME = "cdi.kubevirt.io/createdForDataVolume"

# Event reasons and messages (import-controller.go, controller-base.go).
IMPORT_SCHEDULED = "ImportScheduled"
IMPORT_IN_PROGRESS = "ImportInProgress"
IMPORT_FAILED = "ImportFailed"
IMPORT_SUCCEEDED = "ImportSucceeded"
MSG_IMPORT_SCHEDULED = "Import into {} scheduled"
MSG_IMPORT_IN_PROGRESS = "Import into {} in progress"
MSG_IMPORT_FAILED = "Failed to import into PVC {}"
MSG_IMPORT_SUCCEEDED = "Successfully imported into PVC {}"
# The upload controller's (datavolume/upload-controller.go).
UPLOAD_SCHEDULED = "UploadScheduled"
UPLOAD_READY = "UploadReady"
UPLOAD_FAILED = "UploadFailed"
UPLOAD_SUCCEEDED = "UploadSucceeded"
MSG_UPLOAD_SCHEDULED = "Upload into {} scheduled"
MSG_UPLOAD_READY = "Upload into {} ready"
MSG_UPLOAD_FAILED = "Upload into {} failed"
MSG_UPLOAD_SUCCEEDED = "Successfully uploaded into {}"
ERR_CLAIM_LOST = "ErrClaimLost"
MSG_CLAIM_LOST = "PVC {} lost"
ERR_RESOURCE_EXISTS = "ErrResourceExists"
MSG_RESOURCE_EXISTS = 'Resource "{}" already exists and is not managed by DataVolume'
ERR_MARKED_FOR_DELETION = "ErrResourceMarkedForDeletion"
MSG_MARKED_FOR_DELETION = 'Resource "{}" marked for deletion'
PROGRESS_NONE = "N/A"
PROGRESS_DONE = "100.0%"


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def populated_for(pvc: Obj | None, dv: Obj) -> bool:
    """pvcIsPopulatedForDataVolume: the PVC says it holds this DataVolume's data already."""
    anno = ((pvc or {}).get("metadata") or {}).get("annotations") or {}
    return pvc is not None and anno.get(c.ANN_POPULATED_FOR) == dv["metadata"]["name"]


def can_adopt(pvc: Obj | None, dv: Obj, adoption_enabled: bool = False) -> bool:
    """AllowClaimAdoption: not a PVC we made for this DV; the DV's annotation decides, else the feature gate."""
    if pvc is None:
        return False
    pvc_anno = (pvc.get("metadata") or {}).get("annotations") or {}
    if pvc_anno.get(ANN_CREATED_FOR_DATA_VOLUME) == dv["metadata"].get("uid"):
        return False
    dv_anno = dv["metadata"].get("annotations") or {}
    if c.ANN_ALLOW_CLAIM_ADOPTION in dv_anno:
        return dv_anno[c.ANN_ALLOW_CLAIM_ADOPTION].lower() in ("1", "t", "true")
    return adoption_enabled


def requires_work(pvc: Obj | None, dv: Obj, adoption_enabled: bool = False) -> bool:
    """pvcRequiresWork: false when the PVC already holds the data (populated for it, or adoptable)."""
    if pvc is None:
        return True
    return not (populated_for(pvc, dv) or can_adopt(pvc, dv, adoption_enabled))


def _import_phase(pvc: Obj, status: Obj, work: bool) -> Event | None:
    """The import controller's updateStatusPhase: the worker's phase from the PVC's annotations."""
    anno = pvc["metadata"].get("annotations") or {}
    name = pvc["metadata"]["name"]
    pod_phase = anno.get(c.ANN_POD_PHASE)
    if pod_phase != "Succeeded":
        bound = (pvc.get("status") or {}).get("phase") == "Bound"
        if not (c.ANN_IMPORT_POD in anno and bound and work):
            return None
    status["phase"] = P.IMPORT_SCHEDULED
    if pod_phase == "Pending":
        return Event("Normal", IMPORT_SCHEDULED, MSG_IMPORT_SCHEDULED.format(name))
    if pod_phase == "Running":
        status["phase"] = P.IMPORT_IN_PROGRESS
        return Event("Normal", IMPORT_IN_PROGRESS, MSG_IMPORT_IN_PROGRESS.format(name))
    if pod_phase == "Failed":
        # Upstream fails only on a fatal error; our import controller marks every permanent failure fatal
        # (DESIGN §1: bounded retries that end in Failed), so this is where the DV ends.
        # Otherwise the phase stays ImportScheduled while the worker is retried.
        if anno.get(c.ANN_IMPORT_FATAL_ERROR) == "true":
            status["phase"] = P.FAILED
        return Event("Warning", IMPORT_FAILED, MSG_IMPORT_FAILED.format(name))
    if pod_phase == "Succeeded":
        status["phase"] = P.SUCCEEDED
        status["progress"] = PROGRESS_DONE
        return Event("Normal", IMPORT_SUCCEEDED, MSG_IMPORT_SUCCEEDED.format(name))
    return None


def _upload_phase(pvc: Obj, status: Obj, work: bool) -> Event | None:
    """The upload controller's updateStatusPhase: UploadScheduled, UploadReady once the pod is ready, Succeeded."""
    anno = pvc["metadata"].get("annotations") or {}
    name = pvc["metadata"]["name"]
    pod_phase = anno.get(c.ANN_POD_PHASE)
    if pod_phase != "Succeeded" and not ((pvc.get("status") or {}).get("phase") == "Bound" and work):
        return None
    status["phase"] = P.UPLOAD_SCHEDULED
    if pod_phase == "Pending":
        return Event("Normal", UPLOAD_SCHEDULED, MSG_UPLOAD_SCHEDULED.format(name))
    if pod_phase == "Running":
        if anno.get(c.ANN_POD_READY) == "true":
            status["phase"] = P.UPLOAD_READY
            return Event("Normal", UPLOAD_READY, MSG_UPLOAD_READY.format(name))
        return None
    if pod_phase == "Failed":
        # As for imports: only a permanent failure (bounded retries spent) fails the DataVolume.
        if anno.get(c.ANN_IMPORT_FATAL_ERROR) == "true":
            status["phase"] = P.FAILED
        return Event("Warning", UPLOAD_FAILED, MSG_UPLOAD_FAILED.format(name))
    if pod_phase == "Succeeded":
        status["phase"] = P.SUCCEEDED
        status["progress"] = PROGRESS_DONE
        return Event("Normal", UPLOAD_SUCCEEDED, MSG_UPLOAD_SUCCEEDED.format(name))
    return None


def _worker_phase(pvc: Obj, status: Obj, work: bool) -> Event | None:
    """The phase from the PVC's worker: an upload target's upload pod, else the importer."""
    if c.ANN_UPLOAD_REQUEST in (pvc["metadata"].get("annotations") or {}):
        return _upload_phase(pvc, status, work)
    return _import_phase(pvc, status, work)


def next_status(dv: Obj, pvc: Obj | None, *, wffc: bool, adoption_enabled: bool = False) -> tuple[Obj, Event | None]:
    """updateStatus without conditions: the new status (a copy) and the event for a phase change.

    `wffc`: the PVC's class binds WaitForFirstConsumer and the PVC did not ask for immediate binding.
    """
    status: Obj = copy.deepcopy(dv.get("status") or {})
    event: Event | None = None
    prepopulated = c.ANN_PRE_POPULATED in (dv["metadata"].get("annotations") or {})
    if pvc is None:
        if prepopulated or status.get("phase", "") == P.UNSET:
            status["phase"] = P.PENDING
        return status, None
    if (pvc.get("metadata") or {}).get("deletionTimestamp"):
        return status, None
    status["claimName"] = pvc["metadata"]["name"]
    anno = pvc["metadata"].get("annotations") or {}
    work = requires_work(pvc, dv, adoption_enabled)
    claim_phase = (pvc.get("status") or {}).get("phase", "")
    if anno.get(c.ANN_POD_PHASE) == "Succeeded" and work:
        event = _worker_phase(pvc, status, work)
    elif claim_phase == "Pending":
        if work:
            status["phase"] = P.WAIT_FOR_FIRST_CONSUMER if wffc else P.PENDING
        else:
            status["phase"] = P.SUCCEEDED
    elif claim_phase == "Bound":
        if status.get("phase", "") in (P.PENDING, P.WAIT_FOR_FIRST_CONSUMER, P.UNKNOWN):
            status["phase"] = P.PVC_BOUND
        if work:
            event = _worker_phase(pvc, status, work)
        else:
            status["phase"] = P.SUCCEEDED
    elif claim_phase == "Lost":
        status["phase"] = P.FAILED
        event = Event("Warning", ERR_CLAIM_LOST, MSG_CLAIM_LOST.format(pvc["metadata"]["name"]))
    elif claim_phase:
        status["phase"] = P.UNKNOWN
    try:
        restarts = int(anno.get(c.ANN_POD_RESTARTS, ""))
        if restarts >= 0:
            status["restartCount"] = restarts
    except ValueError:
        pass
    _progress(status, anno)
    return status, event


def _progress(status: Obj, anno: dict[str, str]) -> None:
    """reconcileProgressUpdate: "N/A" until the import controller reports on the PVC; frozen once finished."""
    if not status.get("progress"):
        status["progress"] = PROGRESS_NONE
    if status.get("phase") in (P.SUCCEEDED, P.FAILED):
        return
    value = anno.get(c.ANN_POPULATOR_PROGRESS)
    if value:
        status["progress"] = value
