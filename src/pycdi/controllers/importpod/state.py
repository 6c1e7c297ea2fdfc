"""From the importer pod's status to the PVC's annotations and what to do next (upstream's
`setAnnotationsFromPodWithPrefix` and `updatePvcFromPod`, with bounded retries and permanent failures)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ...api import constants as c

Obj = dict[str, Any]

#: Ours: how many runs of the current importer pod failed so far.
ANN_RETRY_COUNT = "cdi.kubevirt.io/storage.import.retryCount"
SCRATCH_MESSAGE = "scratch space required and none found"
IMAGE_PULL_FAILURE = "failed to pull image"
IMAGE_PULL_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")
DEFAULT_RETRY_LIMIT = 5


class Outcome(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    RETRYING = "Retrying"  # a transient failure below the limit: the pod restarts (OnFailure)
    SCRATCH = "Scratch"  # the importer asked for scratch space: recreate the pod with it
    SUCCEEDED = "Succeeded"
    FATAL = "Fatal"  # a permanent failure, or transient ones past the limit


@dataclass(frozen=True)
class Termination:
    """One finished run of the importer container, its termination message decoded."""

    exit_code: int
    reason: str
    message: str
    #: From the JSON message: True/False as the importer classified the error; None when it did not say.
    transient: bool | None = None
    scratch_required: bool = False
    preallocation_applied: bool = False

    @property
    def failed(self) -> bool:
        return self.exit_code != 0


def parse_termination(terminated: Obj) -> Termination:
    """Our importer writes JSON; anything else (a crash's log tail) is kept as plain text."""
    raw = str(terminated.get("message") or "")
    exit_code = int(terminated.get("exitCode") or 0)
    reason = str(terminated.get("reason") or ("Completed" if exit_code == 0 else "Error"))
    try:
        decoded = json.loads(raw) if raw.strip().startswith("{") else None
    except json.JSONDecodeError:
        decoded = None
    if not isinstance(decoded, dict):
        return Termination(exit_code, reason, raw.strip())
    transient = decoded.get("transient")
    return Termination(
        exit_code, reason, str(decoded.get("message") or ""),
        transient=transient if isinstance(transient, bool) else None,
        scratch_required=decoded.get("scratchSpaceRequired") is True,
        preallocation_applied=decoded.get("preallocationApplied") is True,
    )


def simplify_known_message(message: str) -> str:
    """Upstream's wording for out-of-space errors of plain (non-JSON) messages; ours state the numbers instead."""
    known = ("is larger than the reported available", "no space left on device",
             "file largest block is bigger than maxblock", "disk quota exceeded")
    return "DataVolume too small to contain image" if any(k in message for k in known) else message


@dataclass(frozen=True)
class Observation:
    annotations: dict[str, str]
    outcome: Outcome
    #: The message of the run that decided the outcome ("" while nothing finished).
    message: str = ""
    failures: int = 0


def _container_status(pod: Obj) -> Obj | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == "importer":
            return dict(status)
    return dict(statuses[0]) if statuses else None


def _schedulable(pod: Obj, phase: str) -> str:
    if phase == "Pending":
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                return "false"
    return "true"


def observe(annotations: dict[str, str], pod: Obj, retry_limit: int = DEFAULT_RETRY_LIMIT) -> Observation:
    """The PVC's annotations as the pod's status says they should be, and the outcome for the controller."""
    ann = dict(annotations)
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    ann[c.ANN_POD_SCHEDULABLE] = _schedulable(pod, phase)
    container = _container_status(pod)
    if container is None:
        ann[c.ANN_POD_PHASE] = phase
        return Observation(ann, Outcome.PENDING)
    restarts = int(container.get("restartCount") or 0)
    ann[c.ANN_POD_RESTARTS] = str(max(restarts, _int(ann.get(c.ANN_POD_RESTARTS))))
    state = container.get("state") or {}
    terminated, running = state.get("terminated"), "running" in state
    last = (container.get("lastState") or {}).get("terminated")
    # The run that ended last: the current state, or while restarting (or after a restart) the previous one.
    finished = parse_termination(terminated) if terminated is not None else \
        (parse_termination(last) if last else None)
    failures = restarts + (1 if finished is not None and finished.failed and not running else 0)
    _running_condition(ann, container, finished, running, terminated is not None)

    if terminated is not None and finished is not None and finished.scratch_required and not finished.failed:
        ann[c.ANN_REQUIRES_SCRATCH] = "true"
        return Observation(ann, Outcome.SCRATCH, SCRATCH_MESSAGE, failures)
    if finished is not None and finished.failed:
        ann[ANN_RETRY_COUNT] = str(max(failures, _int(ann.get(ANN_RETRY_COUNT))))
        permanent = finished.transient is False
        if permanent or failures >= retry_limit:
            _fatal(ann, finished)
            return Observation(ann, Outcome.FATAL, finished.message, failures)
    if finished is not None and finished.preallocation_applied:
        ann[c.ANN_PREALLOCATION_APPLIED] = "true"
    ann[c.ANN_POD_PHASE] = phase
    if phase == "Succeeded":
        ann[c.ANN_POPULATOR_PROGRESS] = "100.0%"
        return Observation(ann, Outcome.SUCCEEDED, finished.message if finished else "", failures)
    if finished is not None and finished.failed and not running:
        return Observation(ann, Outcome.RETRYING, finished.message, failures)
    return Observation(ann, Outcome.RUNNING if running else Outcome.PENDING, "", failures)


def _fatal(ann: dict[str, str], finished: Termination) -> None:
    ann[c.ANN_IMPORT_FATAL_ERROR] = "true"
    ann[c.ANN_POD_PHASE] = "Failed"
    ann[c.ANN_RUNNING_CONDITION] = "false"
    ann[c.ANN_RUNNING_CONDITION_MESSAGE] = finished.message
    ann[c.ANN_RUNNING_CONDITION_REASON] = (c.REASON_CHECKSUM_ERROR if "checksum mismatch" in finished.message
                                           else finished.reason)


def _running_condition(ann: dict[str, str], container: Obj, finished: Termination | None, running: bool,
                       terminated: bool) -> None:
    """setAnnotationsFromPodWithPrefix for the importer container (the `storage.condition.running*` trio)."""
    if running:
        ann[c.ANN_RUNNING_CONDITION] = "true"
        ann[c.ANN_RUNNING_CONDITION_MESSAGE] = ""
        ann[c.ANN_RUNNING_CONDITION_REASON] = c.REASON_POD_RUNNING
        return
    ann[c.ANN_RUNNING_CONDITION] = "false"
    waiting = (container.get("state") or {}).get("waiting")
    if waiting is not None:
        reason = str(waiting.get("reason") or "")
        if reason in IMAGE_PULL_REASONS:
            ann[c.ANN_RUNNING_CONDITION_MESSAGE] = f"{IMAGE_PULL_FAILURE}: {container.get('image', '')}"
            ann[c.ANN_RUNNING_CONDITION_REASON] = c.REASON_IMAGE_PULL_FAILED
            return
        if reason != "CrashLoopBackOff" or finished is None:
            ann[c.ANN_RUNNING_CONDITION_MESSAGE] = simplify_known_message(str(waiting.get("message") or ""))
            ann[c.ANN_RUNNING_CONDITION_REASON] = reason
            return
        # Back-off before a restart: upstream leaves the last values; the failed run's message says why.
    if finished is None:
        return
    if finished.scratch_required and terminated:
        ann[c.ANN_RUNNING_CONDITION_MESSAGE] = SCRATCH_MESSAGE
        ann[c.ANN_RUNNING_CONDITION_REASON] = c.REASON_SCRATCH_REQUIRED
        return
    ann[c.ANN_RUNNING_CONDITION_MESSAGE] = finished.message
    ann[c.ANN_RUNNING_CONDITION_REASON] = finished.reason


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
