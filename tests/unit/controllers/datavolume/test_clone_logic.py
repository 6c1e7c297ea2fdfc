"""The clone DataVolume's pure parts: its phase from the PVC (populated or host-assisted), the size of a storage
clone without one, and the validation of source against target."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.api.sizes import required_space
from pycdi.controllers.datavolume import clone_controller, clone_size, clone_status, render

Obj = dict[str, Any]
POD_PHASE = "cdi.kubevirt.io/storage.pod.phase"
CLONE_PHASE = "cdi.kubevirt.io/clonePhase"
MIB, GIB = 1 << 20, 1 << 30


def dv(phase: str | None = None, *, source_ns: str = "src", **spec: Any) -> Obj:
    out: Obj = {"metadata": {"name": "copy", "namespace": "dst", "uid": "u1"},
                "spec": {"source": {"pvc": {"namespace": source_ns, "name": "disk"}}, **spec}}
    if phase is not None:
        out["status"] = {"phase": phase}
    return out


def pvc(phase: str, *, populated: bool, **annotations: str) -> Obj:
    spec: Obj = {}
    if populated:
        spec["dataSourceRef"] = {"apiGroup": "cdi.kubevirt.io", "kind": "VolumeCloneSource", "name": "vcs"}
    else:
        annotations["k8s.io/CloneRequest"] = "src/disk"
    annotations["cdi.kubevirt.io/createdForDataVolume"] = "u1"
    return {"metadata": {"name": "copy", "namespace": "dst", "annotations": annotations}, "spec": spec,
            "status": {"phase": phase}}


@pytest.mark.parametrize(("clone_phase", "phase", "reason"), [
    ("", "CloneScheduled", "CloneScheduled"),
    ("Pending", "CloneScheduled", "CloneScheduled"),
    ("CSIClone", "CSICloneInProgress", "CSICloneInProgress"),
    ("Snapshot", "SnapshotForSmartCloneInProgress", "SnapshotForSmartCloneInProgress"),
    ("SnapshotClone", "CloneFromSnapshotSourceInProgress", "CloneFromSnapshotSourceInProgress"),
    ("HostClone", "CloneInProgress", "CloneInProgress"),
    ("PrepClaim", "PrepClaimInProgress", "PrepClaimInProgress"),
    ("Rebind", "RebindInProgress", "RebindInProgress"),
])
def test_populated_claim_pending_shows_the_populator_phase(clone_phase: str, phase: str, reason: str) -> None:
    status, event = clone_status.next_status(dv("Pending"), pvc("Pending", populated=True, **{
        CLONE_PHASE: clone_phase, "cdi.kubevirt.io/storage.populator.progress": "42.00%"}), wffc=False)
    assert status["phase"] == phase and event is not None and event.reason == reason
    assert status["progress"] == "42.00%"


def test_populator_error_leaves_the_phase_as_upstream() -> None:
    status, _ = clone_status.next_status(dv("CSICloneInProgress"), pvc("Pending", populated=True, **{
        CLONE_PHASE: "Error"}), wffc=False)
    assert status["phase"] == "CSICloneInProgress"


def test_populated_and_bound_succeeds_with_upstreams_message() -> None:
    status, event = clone_status.next_status(dv("RebindInProgress"), pvc("Bound", populated=True, **{
        CLONE_PHASE: "Succeeded", "cdi.kubevirt.io/storage.populator.progress": "100.0%"}), wffc=False)
    assert status["phase"] == "Succeeded" and status["progress"] == "100.0%"
    assert event is not None and event.message == "Successfully cloned from src/disk into dst/copy"


@pytest.mark.parametrize(("pod_phase", "fatal", "phase", "reason"), [
    ("Pending", False, "CloneScheduled", "CloneScheduled"),
    ("Running", False, "CloneInProgress", "CloneInProgress"),
    ("Failed", False, "CloneScheduled", "CloneFailed"),
    ("Failed", True, "Failed", "CloneFailed"),
    ("Succeeded", False, "Succeeded", "CloneSucceeded"),
])
def test_host_assisted_claim_shows_the_workers_phase(pod_phase: str, fatal: bool, phase: str, reason: str) -> None:
    annotations = {POD_PHASE: pod_phase}
    if fatal:
        annotations["cdi.kubevirt.io/storage.import.fatalError"] = "true"
    status, event = clone_status.next_status(dv("PVCBound"), pvc("Bound", populated=False, **annotations),
                                             wffc=False)
    assert status["phase"] == phase and event is not None and event.reason == reason


def test_populated_wffc_claim_without_node_is_pending_population() -> None:
    status, _ = clone_status.next_status(dv("Pending"), pvc("Pending", populated=True), wffc=True)
    assert status["phase"] == "PendingPopulation"


def source(mode: str = "Filesystem", content: str | None = "kubevirt", request: str = "1Gi",
           capacity: str = "1Gi", **annotations: str) -> Obj:
    if content is not None:
        annotations["cdi.kubevirt.io/storage.contentType"] = content
    return {"metadata": {"name": "disk", "namespace": "src", "annotations": annotations},
            "spec": {"volumeMode": mode, "resources": {"requests": {"storage": request}}},
            "status": {"phase": "Bound", "capacity": {"storage": capacity}}}


def test_block_source_gives_its_capacity_inflated_for_a_filesystem_target() -> None:
    spec = {"volumeMode": "Filesystem", "resources": {"requests": {"storage": "0"}}}
    assert clone_size.needs_measure(spec, source("Block"))
    got = clone_size.decide(spec, source("Block"), None, 0.06)
    assert got.done and got.request == required_space(0.06, GIB) and not got.permissive


def test_filesystem_image_needs_its_virtual_size_then_is_permissive() -> None:
    spec = {"volumeMode": "Filesystem", "resources": {"requests": {"storage": "0"}}}
    assert not clone_size.decide(spec, source(), None, 0.06).done
    got = clone_size.decide(spec, source(), 512 * MIB, 0.06)
    assert got.request == required_space(0.06, 512 * MIB) and got.permissive  # the source's capacity is larger


def test_sized_target_needs_no_measure_unless_block_from_an_image() -> None:
    assert not clone_size.needs_measure({"resources": {"requests": {"storage": "2Gi"}}}, source())
    assert clone_size.needs_measure({"volumeMode": "Block", "resources": {"requests": {"storage": "2Gi"}}},
                                    source())


def test_cached_virtual_size_is_valid_only_for_the_same_capacity() -> None:
    cached = source(**{"cdi.Kubervirt.io/virtualSize": "123", "cdi.Kubervirt.io/sourceCapacity": "1Gi"})
    assert clone_size.cached_size(cached) == 123
    cached["status"]["capacity"]["storage"] = "2Gi"
    assert clone_size.cached_size(cached) is None


def test_size_detection_pod_reads_the_source_read_only() -> None:
    pod = clone_size.detection_pod(source() | {"metadata": {"name": "disk", "namespace": "src", "uid": "s1"}},
                                   dv(), "img", None)
    assert pod["metadata"]["name"] == "size-detection-s1" and pod["metadata"]["namespace"] == "src"
    assert pod["metadata"]["annotations"]["cdi.kubevirt.io/ownedByDataVolume"] == "dst/copy"
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "disk", "readOnly": True}
    assert clone_size.pod_result({"status": {"phase": "Succeeded", "containerStatuses": [
        {"state": {"terminated": {"exitCode": 0, "message": "1073741824"}}}]}}) == (GIB, "")


def test_validation_messages() -> None:
    ctx = render.RenderContext()
    small = dv(pvc={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "512Mi"}}})
    assert clone_controller.validate_clone(source(), small, ctx) == (
        "target resources requests storage size is smaller than the source 536870912 < 1073741824")
    archive = dv(contentType="archive", storage={"resources": {"requests": {"storage": "2Gi"}}})
    assert clone_controller.validate_clone(source(), archive, ctx) == (
        "Source contentType (kubevirt) and target contentType (archive) do not match")
    # The storage API compares sizes only for a Block source (a Filesystem image's size is detected instead).
    sized = dv(storage={"resources": {"requests": {"storage": "512Mi"}}})
    assert clone_controller.validate_clone(source(), sized, ctx) == ""
    assert "smaller" in clone_controller.validate_clone(source("Block"), sized, ctx)
