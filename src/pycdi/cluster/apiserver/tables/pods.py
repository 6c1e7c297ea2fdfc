"""The pod printer: READY, STATUS and RESTARTS reasoned exactly as kube's printPod does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .age import age, human_duration, is_zero, parse_time
from .printers import Obj, Printer, age_col, as_dict, as_int, as_list, as_str, col, meta, name_col, sub

COLUMNS = (
    name_col(),
    col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "The aggregate status of the containers in this pod."),
    col("Restarts", "The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted."),
    age_col(),
    col("IP", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
        "allocated.", priority=1),
    col("Node", "NodeName indicates in which node this pod is scheduled.", priority=1),
    col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node, "
        "but it cannot be scheduled right away as preemption victims receive their graceful termination "
        "periods.", priority=1),
    col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.",
        priority=1),
)

_TERMINAL = ("Succeeded", "Failed")


def _restartable(container: Obj | None) -> bool:
    """A sidecar: an init container with restartPolicy Always."""
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(status: Obj, type_: str) -> bool:
    for cond in as_list(status.get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == type_:
            return bool(cond.get("status") == "True")
    return False


def _has_ready(status: Obj) -> bool:
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in as_list(status.get("conditions")))


def _terminated_with_reason_text(term: Obj, prefix: str) -> str:
    reason = as_str(term.get("reason"))
    if reason:
        return prefix + reason
    signal = as_int(term.get("signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{as_int(term.get('exitCode'))}"


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    ts = parse_time(candidate)
    if ts is None or is_zero(ts):
        return current
    return ts if current is None or ts > current else current


def pod_cells(pod: Obj, now: datetime) -> list[Any]:
    spec, status = as_dict(pod.get("spec")), as_dict(pod.get("status"))
    restarts = 0
    sidecar_restarts = 0
    total = len(as_list(spec.get("containers")))
    ready = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = as_str(status.get("phase"))
    reason = as_str(status.get("reason")) or phase
    for cond in as_list(status.get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == "PodScheduled" and \
                cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs: dict[str, Obj] = {}
    for c in as_list(spec.get("initContainers")):
        if isinstance(c, dict):
            init_specs[as_str(c.get("name"))] = c
            if _restartable(c):
                total += 1

    initializing = False
    init_count = len(as_list(spec.get("initContainers")))
    for i, cs in enumerate(as_list(status.get("initContainerStatuses"))):
        cs = as_dict(cs)
        restarts += as_int(cs.get("restartCount"))
        last_term = as_dict(sub(cs, "lastState", "terminated"))
        if last_term:
            last_restart = _later(last_restart, last_term.get("finishedAt"))
        sidecar = _restartable(init_specs.get(as_str(cs.get("name"))))
        if sidecar:
            sidecar_restarts += as_int(cs.get("restartCount"))
            if last_term:
                last_sidecar_restart = _later(last_sidecar_restart, last_term.get("finishedAt"))
        state = as_dict(cs.get("state"))
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if isinstance(terminated, dict) and as_int(terminated.get("exitCode")) == 0:
            continue
        if sidecar and cs.get("started") is True:
            if cs.get("ready") is True:
                ready += 1
            continue
        if isinstance(terminated, dict):
            reason = _terminated_with_reason_text(terminated, "Init:")
        elif isinstance(waiting, dict) and as_str(waiting.get("reason")) and \
                waiting.get("reason") != "PodInitializing":
            reason = "Init:" + as_str(waiting.get("reason"))
        else:
            reason = f"Init:{i}/{init_count}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(as_list(status.get("containerStatuses"))):
            cs = as_dict(cs)
            restarts += as_int(cs.get("restartCount"))
            last_term = as_dict(sub(cs, "lastState", "terminated"))
            if last_term:
                last_restart = _later(last_restart, last_term.get("finishedAt"))
            state = as_dict(cs.get("state"))
            waiting, terminated = as_dict(state.get("waiting")), state.get("terminated")
            if as_str(waiting.get("reason")):
                reason = as_str(waiting.get("reason"))
            elif isinstance(terminated, dict):
                reason = _terminated_with_reason_text(terminated, "")
            elif cs.get("ready") is True and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        # A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" and has_running:
            reason = "Running" if _has_ready(status) else "NotReady"

    deleting = meta(pod).get("deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in _TERMINAL:
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_str = f"{restarts} ({human_duration(now - last_restart)} ago)"

    pod_ip = ""
    ips = as_list(status.get("podIPs"))
    if ips and isinstance(ips[0], dict):
        pod_ip = as_str(ips[0].get("ip"))
    pod_ip = pod_ip or as_str(status.get("podIP")) or "<none>"
    gates = [as_str(as_dict(g).get("conditionType")) for g in as_list(spec.get("readinessGates"))]
    readiness = "<none>"
    if gates:
        conds = {as_str(as_dict(c).get("type")): as_dict(c).get("status")
                 for c in reversed(as_list(status.get("conditions")))}
        readiness = f"{sum(1 for g in gates if conds.get(g) == 'True')}/{len(gates)}"
    return [
        as_str(meta(pod).get("name")), f"{ready}/{total}", reason, restarts_str,
        age(meta(pod).get("creationTimestamp"), now),
        pod_ip, as_str(spec.get("nodeName")) or "<none>",
        as_str(status.get("nominatedNodeName")) or "<none>", readiness,
    ]


def pod_conditions(pod: Obj) -> list[Obj]:
    """Row conditions kube attaches to finished pods (kubectl uses them to spot completed rows)."""
    phase = sub(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []


PODS = Printer(COLUMNS, pod_cells, pod_conditions)
