"""DataVolume status from its PVC: phases, events, progress, restarts and the Bound/Ready/Running conditions."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.controllers.datavolume import claim, conditions, phases

POD_PHASE = "cdi.kubevirt.io/storage.pod.phase"


def dv(phase: str | None = None, **annotations: str) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"name": "d", "namespace": "ns", "uid": "u1", "annotations": annotations},
                           "spec": {"source": {"blank": {}}}}
    if phase is not None:
        out["status"] = {"phase": phase}
    return out


def pvc(phase: str = "Bound", **annotations: str) -> dict[str, Any]:
    anno = {"cdi.kubevirt.io/storage.import.importPodName": "importer-d",
            "cdi.kubevirt.io/createdForDataVolume": "u1", **annotations}
    return {"metadata": {"name": "d", "namespace": "ns", "annotations": anno}, "status": {"phase": phase}}


@pytest.mark.parametrize(("claim_phase", "annotations", "wffc", "phase", "event"), [
    ("Pending", {}, False, "Pending", None),
    ("Pending", {}, True, "WaitForFirstConsumer", None),
    ("Bound", {}, False, "ImportScheduled", None),
    ("Bound", {POD_PHASE: "Pending"}, False, "ImportScheduled",
     ("Normal", "ImportScheduled", "Import into d scheduled")),
    ("Bound", {POD_PHASE: "Running"}, False, "ImportInProgress",
     ("Normal", "ImportInProgress", "Import into d in progress")),
    ("Bound", {POD_PHASE: "Failed"}, False, "ImportScheduled",
     ("Warning", "ImportFailed", "Failed to import into PVC d")),
    ("Bound", {POD_PHASE: "Failed", "cdi.kubevirt.io/storage.import.fatalError": "true"}, False, "Failed",
     ("Warning", "ImportFailed", "Failed to import into PVC d")),
    ("Bound", {POD_PHASE: "Succeeded"}, False, "Succeeded",
     ("Normal", "ImportSucceeded", "Successfully imported into PVC d")),
    ("Lost", {}, False, "Failed", ("Warning", "ErrClaimLost", "PVC d lost")),
    ("Weird", {}, False, "Unknown", None),
])
def test_phase_from_claim(claim_phase: str, annotations: dict[str, str], wffc: bool, phase: str,
                          event: tuple[str, str, str] | None) -> None:
    status, ev = phases.next_status(dv("Pending"), pvc(claim_phase, **annotations), wffc=wffc)
    assert status["phase"] == phase
    assert status["claimName"] == "d"
    assert (None if ev is None else (ev.type, ev.reason, ev.message)) == event


def test_bound_without_import_pod_annotation_is_pvc_bound() -> None:
    claim_obj = pvc("Bound")
    del claim_obj["metadata"]["annotations"]["cdi.kubevirt.io/storage.import.importPodName"]
    status, _ = phases.next_status(dv("WaitForFirstConsumer"), claim_obj, wffc=False)
    assert status["phase"] == "PVCBound"


def test_no_claim_yet() -> None:
    assert phases.next_status(dv(), None, wffc=False)[0]["phase"] == "Pending"
    assert phases.next_status(dv("ImportInProgress"), None, wffc=False)[0]["phase"] == "ImportInProgress"


def test_progress_restarts_and_freeze_on_success() -> None:
    status, _ = phases.next_status(dv("ImportScheduled"), pvc(**{
        POD_PHASE: "Running", "cdi.kubevirt.io/storage.populator.progress": "45.67%",
        "cdi.kubevirt.io/storage.pod.restarts": "3"}), wffc=False)
    assert status["progress"] == "45.67%" and status["restartCount"] == 3
    status, _ = phases.next_status(dv("ImportScheduled"), pvc(), wffc=False)
    assert status["progress"] == "N/A"
    done, _ = phases.next_status({**dv("ImportInProgress"), "status": {"phase": "ImportInProgress",
                                                                       "progress": "99.00%"}},
                                 pvc(**{POD_PHASE: "Succeeded", "cdi.kubevirt.io/storage.populator.progress": "99%"}),
                                 wffc=False)
    assert done["progress"] == "100.0%"


def test_populated_and_adopted_claims_need_no_work() -> None:
    populated = pvc("Bound", **{"cdi.kubevirt.io/storage.populatedFor": "d"})
    assert phases.next_status(dv("Pending"), populated, wffc=False)[0]["phase"] == "Succeeded"
    foreign = pvc("Bound")
    foreign["metadata"]["annotations"].pop("cdi.kubevirt.io/createdForDataVolume")
    assert phases.requires_work(foreign, dv())
    assert not phases.requires_work(foreign, dv(**{"cdi.kubevirt.io/allowClaimAdoption": "true"}))
    assert not phases.requires_work(foreign, dv(), adoption_enabled=True)
    ours = pvc("Bound")  # created for this DV's uid: never "adopted"
    assert phases.requires_work(ours, dv(**{"cdi.kubevirt.io/allowClaimAdoption": "true"}))


def cond(status: dict[str, Any], type_: str) -> tuple[str, str, str]:
    found = conditions.find(status["conditions"], type_)
    assert found is not None
    return found["status"], found.get("reason", ""), found.get("message", "")


def test_conditions_through_an_import() -> None:
    status: dict[str, Any] = {"phase": "Pending"}
    conditions.update_all(status, pvc("Pending"))
    assert cond(status, "Bound") == ("False", "Pending", "PVC d Pending")
    assert cond(status, "Ready") == ("False", "", "")
    assert cond(status, "Running") == ("False", "", "")
    status["phase"] = "ImportInProgress"
    running = {"cdi.kubevirt.io/storage.condition.running": "true",
               "cdi.kubevirt.io/storage.condition.running.reason": "Pod is running"}
    conditions.update_all(status, pvc("Bound", **running))
    assert cond(status, "Bound") == ("True", "Bound", "PVC d Bound")
    assert cond(status, "Ready") == ("False", "TransferRunning", "")
    assert cond(status, "Running") == ("True", "Pod is running", "")
    status["phase"] = "Succeeded"
    conditions.update_all(status, pvc("Bound", **{
        "cdi.kubevirt.io/storage.condition.running": "false",
        "cdi.kubevirt.io/storage.condition.running.reason": "Completed",
        "cdi.kubevirt.io/storage.condition.running.message": "Import Complete"}))
    assert cond(status, "Ready") == ("True", "", "")
    assert cond(status, "Running") == ("False", "Completed", "Import Complete")


def test_condition_times_move_only_with_status() -> None:
    conds: conditions.Conditions = [{"type": "Ready", "status": "False", "lastTransitionTime": "t0",
                                     "lastHeartbeatTime": "t0"}]
    conditions.update(conds, "Ready", "False", "m", "r")
    assert conds[0]["lastTransitionTime"] == "t0" and conds[0]["lastHeartbeatTime"] != "t0"
    conditions.update(conds, "Ready", "True", "", "")
    assert conds[0]["lastTransitionTime"] != "t0" and "message" not in conds[0]


def test_running_condition_special_cases() -> None:
    conds: conditions.Conditions = []
    conditions.update_running(conds, {"cdi.kubevirt.io/storage.pod.schedulable": "false"})
    assert (conds[0]["status"], conds[0]["reason"], conds[0]["message"]) == (
        "False", "Unschedulable", "Importer pod cannot be scheduled")
    conds = []
    conditions.update_running(conds, {
        "cdi.kubevirt.io/storage.condition.running": "false",
        "cdi.kubevirt.io/storage.condition.running.reason": "Error",
        "cdi.kubevirt.io/storage.condition.running.message": "boom",
        "cdi.kubevirt.io/storage.condition.source.running": "false",
        "cdi.kubevirt.io/storage.condition.source.running.reason": "Pending",
        "cdi.kubevirt.io/storage.condition.source.running.message": "waiting"})
    assert (conds[0]["reason"], conds[0]["message"]) == ("Error and Pending", "boom and waiting")


def test_bound_condition_overrides_and_no_claim() -> None:
    status: dict[str, Any] = {"phase": ""}
    conditions.update_all(status, None, "ErrClaimNotValid", "no accessMode")
    assert cond(status, "Bound") == ("False", "ErrClaimNotValid", "no accessMode")
    status = {"phase": ""}
    conditions.update_all(status, None)
    assert cond(status, "Bound") == ("False", "NotFound", "No PVC found")
    scratch = pvc("Bound", **{"cdi.kubevirt.io/storage.condition.bound": "false",
                              "cdi.kubevirt.io/storage.condition.bound.reason": "CreatingScratchSpace",
                              "cdi.kubevirt.io/storage.condition.bound.message": "Creating scratch space"})
    conditions.update_all(status, scratch)
    assert cond(status, "Bound") == ("False", "CreatingScratchSpace", "Creating scratch space")
    lost: dict[str, Any] = {"phase": "Failed"}
    conditions.update_all(lost, pvc("Lost"))
    assert cond(lost, "Bound") == ("False", "ClaimLost", "Claim Lost")


def test_new_claim_for_http_source() -> None:
    source = {"http": {"url": "https://h/x.qcow2", "secretRef": "s", "certConfigMap": "ca", "checksum": "sha256:ab",
                       "extraHeaders": ["A: 1", "B: 2"], "secretExtraHeaders": ["hs"]}}
    obj = {"metadata": {"name": "d", "namespace": "ns", "uid": "u1", "labels": {"team": "x"},
                        "annotations": {"cdi.kubevirt.io/storage.bind.immediate.requested": "",
                                        "cdi.kubevirt.io/storage.populatedFor": "d"}},
           "spec": {"source": source, "contentType": "archive", "preallocation": True, "priorityClassName": "p"}}
    body = claim.new_claim(obj, {"volumeMode": "Filesystem"}, True)
    anno = body["metadata"]["annotations"]
    assert anno["cdi.kubevirt.io/storage.import.endpoint"] == "https://h/x.qcow2"
    assert anno["cdi.kubevirt.io/storage.import.source"] == "http"
    assert anno["cdi.kubevirt.io/storage.import.secretName"] == "s"
    assert anno["cdi.kubevirt.io/storage.import.certConfigMap"] == "ca"
    assert anno["cdi.kubevirt.io/storage.import.checksum"] == "sha256:ab"
    assert anno["cdi.kubevirt.io/storage.import.extraHeaders.1"] == "B: 2"
    assert anno["cdi.kubevirt.io/storage.import.secretExtraHeaders.0"] == "hs"
    assert anno["cdi.kubevirt.io/storage.contentType"] == "archive"
    assert anno["cdi.kubevirt.io/storage.preallocation.requested"] == "true"
    assert anno["cdi.kubevirt.io/storage.pod.priorityclassname"] == "p"
    assert anno["cdi.kubevirt.io/storage.import.importPodName"] == "importer-d"
    assert anno["cdi.kubevirt.io/storage.bind.immediate.requested"] == ""
    assert "cdi.kubevirt.io/storage.populatedFor" not in anno
    assert body["metadata"]["labels"]["app"] == "containerized-data-importer"
    assert body["metadata"]["labels"]["team"] == "x"
    assert body["metadata"]["labels"]["alerts.k8s.io/KubePersistentVolumeFillingUp"] == "disabled"
    assert body["metadata"]["ownerReferences"] == [{
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "name": "d", "uid": "u1",
        "controller": True, "blockOwnerDeletion": True}]
    assert claim.source_kind(obj) == "http"
    assert claim.source_kind({"spec": {"sourceRef": {"kind": "DataSource", "name": "x"}}}) == "sourceRef"
