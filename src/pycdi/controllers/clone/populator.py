"""The clone populator (upstream's `populators/clone-populator.go`): a PVC whose `dataSourceRef` names a
VolumeCloneSource is filled without ever being written by us directly.

The strategy is chosen once and saved on the claim (`cdi.kubevirt.io/cloneType`); its plan runs phase by phase,
each phase's name in `cdi.kubevirt.io/clonePhase` (which the DataVolume shows as its phase):
- `csi-clone`: [CSIClone -> PrepClaim -> Rebind]: `tmp-pvc-<target uid>` in the source namespace with the source as
  its `dataSourceRef` (the provisioner clones it), grown to the target's request, then its PV handed to the target;
- `snapshot`: [Snapshot -> SnapshotClone -> PrepClaim -> Rebind]: `tmp-snapshot-<uid>` of the source, restored into
  `tmp-pvc-<uid>`, then the same;
- `copy`: [HostClone -> Rebind]: `tmp-pvc-<uid>` filled by the host-assisted clone controller's two workers.
Nothing crosses namespaces but the PV (the rebind), which is how a cross-namespace clone moves no data. Once the
target is Bound the plan is done; the finalizer `cdi.kubevirt.io/clonePopulator` stays until everything labelled
`cdi.kubevirt.io/OwnedByUID=<target uid>` is deleted.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ...api import clone as cl
from ...api import constants as c
from ...api.clonetoken import CloneTokens, InvalidCloneToken
from ...kube.client import KubeClient
from ...kube.errors import NotFound
from ...kube.events import EventRecorder
from ...kube.resources import (
    CDIS,
    DATA_VOLUMES,
    PERSISTENT_VOLUME_CLAIMS,
    PERSISTENT_VOLUMES,
    PODS,
    STORAGE_CLASSES,
    STORAGE_PROFILES,
    VOLUME_CLONE_SOURCES,
    VOLUME_SNAPSHOT_CLASSES,
    VOLUME_SNAPSHOTS,
)
from ..runtime import Controller, Informer, Manager, Request, Result
from . import common as cm
from . import planner
from .phases import PROGRESS_DONE, PhaseError, PhaseStatus, Plan, delete

log = logging.getLogger(__name__)

NAME = "clone-populator"
STRATEGY_WAIT = 5.0
UID_INDEX, VCS_INDEX, SOURCE_INDEX = "clone-uid", "clone-volume-clone-source", "clone-source"
#: What a phase's status may bring onto the target (upstream's desiredCloneAnnotations).
_DESIRED = (c.ANN_PREALLOCATION_APPLIED, cl.ANN_CLONE_OF)
Obj = dict[str, Any]


class ClonePopulator:
    def __init__(self, client: KubeClient, informers: dict[str, Informer], tokens: CloneTokens | None,
                 image: str) -> None:
        self.client = client
        self.i = informers
        self.tokens = tokens
        self.image = image
        self.recorder = EventRecorder(client, NAME)

    # ---- reads --------------------------------------------------------------------------------------------

    def pvc(self, name: str, namespace: str) -> Obj | None:
        return self.i["pvcs"].get(name, namespace)

    def volume_clone_source(self, pvc: Obj) -> Obj | None:
        ref = cm.data_source_ref(pvc) or {}
        namespace = cm.annots(pvc).get(cl.ANN_DATA_SOURCE_NAMESPACE) or cm.namespace_of(pvc)
        return self.i["vcs"].get(str(ref.get("name") or ""), namespace)

    def inputs(self, source: Obj, target: Obj) -> planner.Inputs:
        cdis = self.i["cdis"].list()
        override = str(cm.spec(cdis[0]).get("cloneStrategyOverride") or "") if cdis else ""
        return planner.Inputs(
            source=source, target=target,
            classes={cm.name_of(sc): sc for sc in self.i["classes"].list()},
            profiles={cm.name_of(p): p for p in self.i["profiles"].list()},
            snapshot_classes=self.i["vscs"].list(), volume=lambda n: self.i["pvs"].get(n), override=override)

    def data_volume(self, name: str, namespace: str) -> Obj | None:
        return self.i["dvs"].get(name, namespace)

    # ---- reconcile ----------------------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        pvc = self.pvc(request.name, request.namespace)
        if pvc is None or not cm.is_clone_target(pvc):
            return Result()
        deleted = bool(cm.meta(pvc).get("deletionTimestamp"))
        succeeded = cm.annots(pvc).get(cl.ANN_CLONE_PHASE) == cl.PHASE_SUCCEEDED
        if not deleted and not succeeded:
            try:
                return await self._pending(copy.deepcopy(pvc))
            except PhaseError as e:
                await self._set_phase(pvc, cl.PHASE_ERROR, error=str(e))
                return Result()
        if cl.FINALIZER_CLONE_POPULATOR in (cm.meta(pvc).get("finalizers") or []):
            await self._cleanup(pvc)
            await self._set_finalizer(pvc, present=False)
        return Result()

    async def _pending(self, pvc: Obj) -> Result:
        bound = cm.is_bound(pvc)
        vcs = self.volume_clone_source(pvc)
        if vcs is None:
            await self._set_phase(pvc, cl.PHASE_PENDING)
            return Result()
        self._validate_cross_namespace(pvc, vcs)
        source_ref = cm.spec(vcs).get("source") or {}
        if source_ref.get("kind") != "PersistentVolumeClaim":
            raise PhaseError(f"unsupported clone source kind {source_ref.get('kind')!r}")
        source_ns, source_name = cm.namespace_of(vcs), str(source_ref.get("name") or "")
        strategy = cm.annots(pvc).get(c.ANN_CLONE_TYPE)
        fallback: tuple[str, str] | None = None
        vsc = ""
        if not strategy:
            source = self.pvc(source_name, source_ns)
            if source is None:
                await self.recorder.warning(pvc, cl.CLONE_WITHOUT_SOURCE,
                                            cl.MSG_CLONE_WITHOUT_SOURCE.format("pvc", source_name))
                await self._set_phase(pvc, cl.PHASE_PENDING)
                return Result(requeue_after=STRATEGY_WAIT)
            try:
                choice = planner.choose(self.inputs(source, pvc))
            except planner.CloneValidationError as e:
                await self.recorder.warning(pvc, cl.ERR_INCOMPATIBLE_PVC, str(e))
                await self.recorder.warning(pvc, cl.CLONE_VALIDATION_FAILED, cl.MSG_CLONE_VALIDATION_FAILED_SHORT)
                raise PhaseError(str(e)) from e
            strategy, fallback, vsc = choice.strategy, choice.fallback, choice.snapshot_class
            if fallback is not None:
                await self.recorder.warning(pvc, fallback[0], fallback[1])
        if await self._init_target(pvc, strategy, fallback):
            return Result()  # the update brings us back
        if strategy == planner.SNAPSHOT and not vsc:
            source = self.pvc(source_name, source_ns)
            vsc = planner.snapshot_class(self.inputs(source, pvc), source, pvc) if source is not None else ""
            if not vsc:
                raise PhaseError("no compatible volumesnapshotclass")
        plan = Plan(self, pvc, vcs, source_ns, source_name, vsc)
        phases = plan.phases(strategy)
        statuses: list[PhaseStatus] = []
        for phase in phases:
            result = None if bound else await phase.reconcile()
            if phase.status is not None:
                statuses.append(phase.status())
            if result is not None:
                await self._set_phase(pvc, phase.name, statuses)
                return result
        await self._set_phase(pvc, cl.PHASE_SUCCEEDED, statuses or [PhaseStatus()])
        return Result()

    def _validate_cross_namespace(self, pvc: Obj, vcs: Obj) -> None:
        """Another namespace's source only with the token the DataVolume controller put on the claim."""
        if cm.namespace_of(pvc) == cm.namespace_of(vcs):
            return
        if cm.annots(pvc).get(cl.ANN_DATA_SOURCE_NAMESPACE) != cm.namespace_of(vcs):
            raise PhaseError("cross-namespace with resource grants is not supported yet")
        if self.tokens is None:
            raise PhaseError("clone token cannot be validated: no signing key configured")
        ann = cm.annots(pvc)
        source = str((cm.spec(vcs).get("source") or {}).get("name") or "")
        source_ns, target_ns, target = cm.namespace_of(vcs), cm.namespace_of(pvc), cm.name_of(pvc)
        try:
            if ann.get(c.ANN_EXTENDED_CLONE_TOKEN):
                self.tokens.check(ann[c.ANN_EXTENDED_CLONE_TOKEN], source_ns=source_ns, source=source,
                                  target_ns=target_ns, target=target, uid=cm.uid_of(pvc), extended=True)
            elif ann.get(c.ANN_CLONE_TOKEN):
                self.tokens.check(ann[c.ANN_CLONE_TOKEN], source_ns=source_ns, source=source, target_ns=target_ns,
                                  target=target)
            else:
                raise InvalidCloneToken("no clone token")
        except InvalidCloneToken as e:
            raise PhaseError(f"clone token is not valid: {e}") from e

    async def _init_target(self, pvc: Obj, strategy: str, fallback: tuple[str, str] | None) -> bool:
        """Labels, the saved strategy, phase Pending, the fallback reason and our finalizer; True if written."""
        ann, labels = cm.annots(pvc), cm.labels(pvc)
        patch_ann: dict[str, str] = {}
        if ann.get(c.ANN_CLONE_TYPE) != strategy:
            patch_ann[c.ANN_CLONE_TYPE] = strategy
        if not ann.get(cl.ANN_CLONE_PHASE):
            patch_ann[cl.ANN_CLONE_PHASE] = cl.PHASE_PENDING
        if fallback is not None and not ann.get(c.ANN_CLONE_FALLBACK_REASON):
            patch_ann[c.ANN_CLONE_FALLBACK_REASON] = fallback[1]
        patch_labels: dict[str, str] = {}
        if labels.get(cm.CDI_LABEL[0]) != cm.CDI_LABEL[1]:
            patch_labels[cm.CDI_LABEL[0]] = cm.CDI_LABEL[1]
        if cm.volume_mode(pvc) == cm.FILESYSTEM and cm.FILLING_UP_LABEL[0] not in labels:
            patch_labels[cm.FILLING_UP_LABEL[0]] = cm.FILLING_UP_LABEL[1]
        finalizers = list(cm.meta(pvc).get("finalizers") or [])
        if not patch_ann and not patch_labels and cl.FINALIZER_CLONE_POPULATOR in finalizers:
            return False
        meta: Obj = {"resourceVersion": cm.meta(pvc).get("resourceVersion"),
                     "finalizers": finalizers + [f for f in [cl.FINALIZER_CLONE_POPULATOR] if f not in finalizers]}
        if patch_ann:
            meta["annotations"] = patch_ann
        if patch_labels:
            meta["labels"] = patch_labels
        await self.client.patch(PERSISTENT_VOLUME_CLAIMS, cm.name_of(pvc), {"metadata": meta}, cm.namespace_of(pvc))
        return True

    async def _set_phase(self, pvc: Obj, phase: str, statuses: list[PhaseStatus] | None = None, *,
                         error: str = "") -> None:
        """updateClonePhase: the phase, the progress, the annotations phases report, the running condition."""
        ann = cm.annots(pvc)
        want: dict[str, str | None] = {cl.ANN_CLONE_PHASE: phase, cl.ANN_CLONE_ERROR: error or None}
        merged: dict[str, str] = {}
        statuses = list(statuses or [])
        if phase == cl.PHASE_SUCCEEDED and statuses:
            statuses[-1].progress = PROGRESS_DONE
        for st in statuses:
            if st.progress:
                want[c.ANN_POPULATOR_PROGRESS] = st.progress
            for key, value in st.annotations.items():
                merged[key] = value
                if key in _DESIRED:
                    want[key] = value
        if _owned_by_data_volume(pvc):
            want.update(_running(phase, error, merged))
        changes = {k: v for k, v in want.items() if ann.get(k) != v}
        if not changes:
            return
        try:
            await self.client.patch(PERSISTENT_VOLUME_CLAIMS, cm.name_of(pvc), {"metadata": {"annotations": changes}},
                                    cm.namespace_of(pvc))
        except NotFound:
            pass

    async def _set_finalizer(self, pvc: Obj, *, present: bool) -> None:
        finalizers = [f for f in cm.meta(pvc).get("finalizers") or [] if f != cl.FINALIZER_CLONE_POPULATOR]
        if present:
            finalizers.append(cl.FINALIZER_CLONE_POPULATOR)
        patch = {"metadata": {"resourceVersion": cm.meta(pvc).get("resourceVersion"), "finalizers": finalizers}}
        try:
            await self.client.patch(PERSISTENT_VOLUME_CLAIMS, cm.name_of(pvc), patch, cm.namespace_of(pvc))
        except NotFound:
            pass

    async def _cleanup(self, pvc: Obj) -> None:
        """Planner.Cleanup: delete what the clone made (unless a host clone's pods are to be kept)."""
        ann = cm.annots(pvc)
        if ann.get(c.ANN_CLONE_TYPE) == planner.COPY and ann.get(c.ANN_POD_RETAIN_AFTER_COMPLETION) == "true":
            await self.recorder.warning(pvc, "RetainedPVCPrime", "PVC Prime retained")
            return
        uid = cm.uid_of(pvc)
        for key, resource in (("pvcs", PERSISTENT_VOLUME_CLAIMS), ("pods", PODS), ("snapshots", VOLUME_SNAPSHOTS)):
            for obj in self.i[key].list():
                if cm.labels(obj).get(cl.LABEL_OWNED_BY_UID) == uid and not cm.meta(obj).get("deletionTimestamp"):
                    await delete(self.client, resource, obj)


def _owned_by_data_volume(pvc: Obj) -> bool:
    ref = cm.controller_ref(pvc)
    return ref is not None and ref.get("kind") == "DataVolume"


def _running(phase: str, error: str, merged: dict[str, str]) -> dict[str, str | None]:
    """addRunningAnnotations."""
    if phase == cl.PHASE_SUCCEEDED:
        running, message, reason = "false", cl.CLONE_COMPLETE, "Completed"
    elif phase == cl.PHASE_PENDING:
        running, message, reason = "false", cl.CLONE_PENDING, "Pending"
    elif phase == cl.PHASE_ERROR:
        running, message, reason = "false", error, "Error"
    elif c.ANN_RUNNING_CONDITION in merged:
        running = merged[c.ANN_RUNNING_CONDITION]
        message = merged.get(c.ANN_RUNNING_CONDITION_MESSAGE, "")
        reason = merged.get(c.ANN_RUNNING_CONDITION_REASON, "")
        out: dict[str, str | None] = {c.ANN_RUNNING_CONDITION: running, c.ANN_RUNNING_CONDITION_MESSAGE: message,
                                      c.ANN_RUNNING_CONDITION_REASON: reason}
        if c.ANN_POD_RESTARTS in merged:
            out[c.ANN_POD_RESTARTS] = merged[c.ANN_POD_RESTARTS]
        return out
    else:
        running, message, reason = "true", "", "Populator is running"
    return {c.ANN_RUNNING_CONDITION: running, c.ANN_RUNNING_CONDITION_MESSAGE: message,
            c.ANN_RUNNING_CONDITION_REASON: reason}


def add_to_manager(manager: Manager, tokens: CloneTokens | None, image: str, workers: int = 3) -> Controller:
    informers = {
        "pvcs": manager.informer(PERSISTENT_VOLUME_CLAIMS), "pods": manager.informer(PODS),
        "vcs": manager.informer(VOLUME_CLONE_SOURCES), "snapshots": manager.informer(VOLUME_SNAPSHOTS),
        "classes": manager.informer(STORAGE_CLASSES), "profiles": manager.informer(STORAGE_PROFILES),
        "vscs": manager.informer(VOLUME_SNAPSHOT_CLASSES), "pvs": manager.informer(PERSISTENT_VOLUMES),
        "cdis": manager.informer(CDIS), "dvs": manager.informer(DATA_VOLUMES),
    }
    reconciler = ClonePopulator(manager.client, informers, tokens, image)
    controller = Controller(NAME, reconciler, workers=workers)
    pvcs = informers["pvcs"]
    pvcs.add_index(UID_INDEX, lambda o: [cm.uid_of(o)])
    pvcs.add_index(VCS_INDEX, lambda o: [_vcs_key(o)] if cm.is_clone_target(o) else [])
    informers["vcs"].add_index(SOURCE_INDEX, lambda o: [
        f"{cm.namespace_of(o)}/{(cm.spec(o).get('source') or {}).get('name', '')}"])

    def targets_of_vcs(vcs: Obj) -> list[Request]:
        return [Request(cm.name_of(p), cm.namespace_of(p))
                for p in pvcs.by_index(VCS_INDEX, f"{cm.namespace_of(vcs)}/{cm.name_of(vcs)}")]

    def owner_target(obj: Obj) -> list[Request]:
        uid = cm.labels(obj).get(cl.LABEL_OWNED_BY_UID)
        return [Request(cm.name_of(p), cm.namespace_of(p)) for p in pvcs.by_index(UID_INDEX, uid)] if uid else []

    def claim_changed(pvc: Obj) -> list[Request]:
        out = owner_target(pvc)
        if cm.is_clone_target(pvc):
            out.append(Request(cm.name_of(pvc), cm.namespace_of(pvc)))
        # A source claim: the targets cloning it (bound, populated, free...).
        for vcs in informers["vcs"].by_index(SOURCE_INDEX, f"{cm.namespace_of(pvc)}/{cm.name_of(pvc)}"):
            out.extend(targets_of_vcs(vcs))
        return out

    def pod_changed(pod: Obj) -> list[Request]:
        out = owner_target(pod)
        for claim, _ in cm.claim_names(pod):
            for vcs in informers["vcs"].by_index(SOURCE_INDEX, f"{cm.namespace_of(pod)}/{claim}"):
                out.extend(targets_of_vcs(vcs))
        return out

    controller.watch(pvcs, claim_changed)
    controller.watch(informers["vcs"], targets_of_vcs)
    controller.watch(informers["snapshots"], owner_target)
    controller.watch(informers["pods"], pod_changed)
    manager.add(controller)
    return controller


def _vcs_key(pvc: Obj) -> str:
    ref = cm.data_source_ref(pvc) or {}
    namespace = cm.annots(pvc).get(cl.ANN_DATA_SOURCE_NAMESPACE) or cm.namespace_of(pvc)
    return f"{namespace}/{ref.get('name', '')}"
