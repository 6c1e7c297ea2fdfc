"""From importer pod statuses (as the node agent and kubelet write them) to PVC annotations and outcomes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pycdi.controllers.importpod.state import ANN_RETRY_COUNT, Outcome, observe, parse_termination

ANN = "cdi.kubevirt.io/storage."
RUNNING = f"{ANN}condition.running"


def pod(phase: str, state: dict[str, Any] | None = None, *, restarts: int = 0, last: dict[str, Any] | None = None,
        conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if state is not None:
        status["containerStatuses"] = [{"name": "importer", "image": "quay.io/pycdi/pycdi-worker:latest",
                                        "restartCount": restarts, "state": state,
                                        "lastState": {"terminated": last} if last else {}}]
    return {"status": status}


def term(code: int, message: Any, reason: str = "") -> dict[str, Any]:
    text = message if isinstance(message, str) else json.dumps(message)
    return {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error"), "message": text}


def test_unscheduled_pod() -> None:
    obs = observe({}, pod("Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                                   "reason": "Unschedulable"}]))
    assert obs.outcome == Outcome.PENDING
    assert obs.annotations[f"{ANN}pod.phase"] == "Pending"
    assert obs.annotations[f"{ANN}pod.schedulable"] == "false"


def test_creating_then_running() -> None:
    obs = observe({}, pod("Pending", {"waiting": {"reason": "ContainerCreating"}}))
    assert obs.outcome == Outcome.PENDING
    assert (obs.annotations[RUNNING], obs.annotations[f"{RUNNING}.reason"]) == ("false", "ContainerCreating")
    obs = observe(obs.annotations, pod("Running", {"running": {"startedAt": "t"}}))
    assert obs.outcome == Outcome.RUNNING
    assert obs.annotations[RUNNING] == "true"
    assert obs.annotations[f"{RUNNING}.reason"] == "Pod is running"
    assert obs.annotations[f"{RUNNING}.message"] == ""
    assert obs.annotations[f"{ANN}pod.restarts"] == "0"


def test_image_pull_failure() -> None:
    obs = observe({}, pod("Pending", {"waiting": {"reason": "ErrImagePull", "message": "x"}}))
    assert obs.annotations[f"{RUNNING}.reason"] == "ImagePullFailed"
    assert obs.annotations[f"{RUNNING}.message"] == "failed to pull image: quay.io/pycdi/pycdi-worker:latest"


def test_success() -> None:
    message = {"message": "Import Complete, Preallocation applied", "preallocationApplied": True}
    obs = observe({f"{ANN}populator.progress": "45.00%"}, pod("Succeeded", {"terminated": term(0, message)}))
    assert obs.outcome == Outcome.SUCCEEDED
    ann = obs.annotations
    assert ann[f"{ANN}pod.phase"] == "Succeeded"
    assert ann[f"{ANN}populator.progress"] == "100.0%"
    assert ann[f"{ANN}preallocation"] == "true"
    assert (ann[RUNNING], ann[f"{RUNNING}.reason"]) == ("false", "Completed")
    assert ann[f"{RUNNING}.message"] == "Import Complete, Preallocation applied"


def test_scratch_required_keeps_the_phase() -> None:
    message = {"scratchSpaceRequired": True, "message": "no range support"}
    obs = observe({f"{ANN}pod.phase": "Running"}, pod("Succeeded", {"terminated": term(0, message)}))
    assert obs.outcome == Outcome.SCRATCH
    ann = obs.annotations
    assert ann[f"{ANN}pod.phase"] == "Running"  # not "Succeeded": the import is not done
    assert ann[f"{ANN}import.requiresScratch"] == "true"
    assert ann[f"{RUNNING}.reason"] == "Scratch space required"
    assert ann[f"{RUNNING}.message"] == "scratch space required and none found"


def test_permanent_failure_is_fatal_at_once() -> None:
    message = {"message": "Unable to process data: expected status code 200, got 404", "transient": False}
    obs = observe({}, pod("Running", {"terminated": term(1, message)}))
    assert obs.outcome == Outcome.FATAL
    ann = obs.annotations
    assert ann[f"{ANN}import.fatalError"] == "true"
    assert ann[f"{ANN}pod.phase"] == "Failed"
    assert ann[f"{RUNNING}.message"] == message["message"]
    assert ann[f"{RUNNING}.reason"] == "Error"
    assert ann[ANN_RETRY_COUNT] == "1"


def test_permanent_failure_seen_after_an_immediate_restart_is_still_fatal() -> None:
    message = {"message": "Unable to process data: checksum mismatch", "transient": False}
    obs = observe({}, pod("Running", {"running": {"startedAt": "t"}}, restarts=1, last=term(1, message)))
    assert obs.outcome == Outcome.FATAL
    assert obs.annotations[f"{RUNNING}.reason"] == "ChecksumError"


@pytest.mark.parametrize(("restarts", "outcome"), [(0, Outcome.RETRYING), (3, Outcome.RETRYING),
                                                   (4, Outcome.FATAL)])
def test_transient_failures_are_bounded(restarts: int, outcome: Outcome) -> None:
    message = {"message": "Unable to process data: got 503", "transient": True}
    obs = observe({}, pod("Running", {"terminated": term(1, message)}, restarts=restarts), retry_limit=5)
    assert obs.outcome == outcome
    assert obs.annotations[ANN_RETRY_COUNT] == str(restarts + 1)
    assert obs.annotations[f"{RUNNING}.message"] == message["message"]
    assert (f"{ANN}import.fatalError" in obs.annotations) == (outcome == Outcome.FATAL)


def test_back_off_shows_the_failed_run() -> None:
    message = {"message": "Unable to process data: connection reset", "transient": True}
    state = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    obs = observe({}, pod("Running", state, restarts=1, last=term(1, message)))
    assert obs.outcome == Outcome.RETRYING
    assert obs.annotations[f"{RUNNING}.message"] == message["message"]
    assert obs.annotations[ANN_RETRY_COUNT] == "2"
    assert obs.annotations[f"{ANN}pod.restarts"] == "1"
    # Running again after that: the count of failures stays.
    obs = observe(obs.annotations, pod("Running", {"running": {}}, restarts=2, last=term(1, message)))
    assert obs.outcome == Outcome.RUNNING
    assert obs.annotations[ANN_RETRY_COUNT] == "2"
    assert obs.annotations[f"{ANN}pod.restarts"] == "2"


def test_crash_without_json_is_transient_and_plain() -> None:
    t = parse_termination(term(1, "Traceback ...\nno space left on device\n"))
    assert t.transient is None and t.message.endswith("no space left on device")
    obs = observe({}, pod("Running", {"terminated": term(137, "", "OOMKilled")}))
    assert obs.outcome == Outcome.RETRYING
    assert obs.annotations[f"{RUNNING}.reason"] == "OOMKilled"


def test_restarts_never_go_down() -> None:
    obs = observe({f"{ANN}pod.restarts": "3"}, pod("Running", {"running": {}}, restarts=0))
    assert obs.annotations[f"{ANN}pod.restarts"] == "3"
