"""Pod and container status as the kubelet reports it, built from the agent's view of each container."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ...api.quantity import QuantityError, parse

Obj = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRun:
    """One container of a pod: its current state and history (the kubelet's container status)."""

    name: str
    image: str
    init: bool = False
    #: How many instances were started; restartCount is instances - 1.
    instances: int = 0
    state: str = "waiting"  # waiting | running | terminated
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    container_id: str = ""
    last_state: Obj = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    #: Crash back-off: the next delay, and the monotonic time before which no restart happens.
    backoff_seconds: float = 0.0
    backoff_until: float = 0.0

    @property
    def restart_count(self) -> int:
        return max(self.instances - 1, 0)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def succeeded(self) -> bool:
        return self.state == "terminated" and self.exit_code == 0

    def terminated_state(self) -> Obj:
        state: Obj = {"exitCode": self.exit_code, "reason": self.reason or ("Completed" if not self.exit_code
                                                                            else "Error")}
        if self.message:
            state["message"] = self.message
        state["startedAt"] = self.started_at or None
        state["finishedAt"] = self.finished_at or None
        if self.container_id:
            state["containerID"] = self.container_id
        return state

    def to_status(self) -> Obj:
        if self.state == "running":
            state: Obj = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {"terminated": self.terminated_state()}
        else:
            waiting: Obj = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        status: Obj = {
            "name": self.name, "image": self.image, "imageID": image_id(self.image), "ready": self.running,
            "restartCount": self.restart_count, "started": self.running, "state": state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def image_id(image: str) -> str:
    """A local process has no image digest: the reference stands in (kubelet prints the resolved digest)."""
    return image if "/" in image.split(":")[0] else f"docker.io/library/{image}"


def pod_phase(init: list[ContainerRun], main: list[ContainerRun], restart_policy: str) -> str:
    """kubelet's getPhase: init failures, then waiting/running/stopped counts of the app containers."""
    for c in init:
        if c.state == "terminated" and c.exit_code != 0 and restart_policy == "Never":
            return "Failed"
        if not c.succeeded:
            return "Pending"
    waiting = running = stopped = succeeded = 0
    for c in main:
        if c.state == "running":
            running += 1
        elif c.state == "terminated":
            stopped += 1
            succeeded += c.exit_code == 0
        elif c.last_state:
            stopped += 1  # waiting to restart after having run: counts as stopped, as the kubelet does
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": "True" if ok else "False"}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def pod_conditions(init: list[ContainerRun], main: list[ContainerRun], phase: str, sandbox: bool,
                   unready_reason: str = "", unready_message: str = "") -> list[Obj]:
    """PodReadyToStartContainers, Initialized, Ready, ContainersReady with the kubelet's reasons."""
    pending_init = [c.name for c in init if not c.succeeded]
    unready = [c.name for c in main if not c.running]
    if phase in ("Succeeded", "Failed"):
        ready_reason, ready_message = "PodCompleted", ""
    elif unready_reason:
        ready_reason, ready_message = unready_reason, unready_message
    else:
        ready_reason = "ContainersNotReady"
        ready_message = f"containers with unready status: [{' '.join(unready)}]"
    ready = not unready and phase == "Running"
    conditions = [
        _condition("PodReadyToStartContainers", sandbox),
        _condition("Initialized", not pending_init or phase == "Succeeded",
                   "" if not pending_init else "ContainersNotInitialized",
                   "" if not pending_init else f"containers with incomplete status: [{' '.join(pending_init)}]"),
        _condition("Ready", ready, "" if ready else ready_reason, "" if ready else ready_message),
        _condition("ContainersReady", ready, "" if ready else ready_reason, "" if ready else ready_message),
    ]
    if phase == "Succeeded":
        conditions[1] = _condition("Initialized", True, "PodCompleted")
    return conditions


def merge_conditions(old: list[Obj], new: list[Obj], timestamp: str) -> list[Obj]:
    """Replace our condition types, keep the others (PodScheduled...); transition times move only on change."""
    by_type = {c.get("type"): c for c in old if isinstance(c, dict)}
    merged = [c for c in old if isinstance(c, dict) and c.get("type") not in {n["type"] for n in new}]
    for cond in new:
        previous = by_type.get(cond["type"])
        same = previous is not None and previous.get("status") == cond["status"]
        cond = {**cond, "lastProbeTime": None,
                "lastTransitionTime": previous.get("lastTransitionTime") if same and previous else timestamp}
        merged.append(cond)
    order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    return sorted(merged, key=lambda c: order.index(c["type"]) if c.get("type") in order else len(order))


def qos_class(pod: Obj) -> str:
    """Guaranteed when every container's requests equal its limits for cpu and memory; BestEffort with none."""
    containers = [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]
    containers += [c for c in (pod.get("spec") or {}).get("initContainers") or [] if isinstance(c, dict)]
    any_set = False
    guaranteed = True
    for c in containers:
        resources = c.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = {**limits, **(resources.get("requests") or {})}
        if any(k in requests or k in limits for k in ("cpu", "memory")):
            any_set = True
        for k in ("cpu", "memory"):
            if k not in limits or not _same_quantity(requests.get(k), limits[k]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _same_quantity(a: object, b: object) -> bool:
    try:
        return a is not None and parse(str(a)).value == parse(str(b)).value
    except QuantityError:
        return False
