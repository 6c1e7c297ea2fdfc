"""The DataVolume controller: creates each import DataVolume's PVC and keeps the DataVolume's status in step
with it, as upstream's datavolume-import-controller (controller-base.go, import-controller.go)."""

from __future__ import annotations

import copy
import logging
from typing import Any

from ...api import constants as c
from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists, APIStatusError, NotFound
from ...kube.events import EventRecorder
from ...kube.resources import (
    CDI_CONFIGS,
    CONFIG_MAPS,
    DATA_VOLUMES,
    PERSISTENT_VOLUME_CLAIMS,
    PERSISTENT_VOLUMES,
    STORAGE_CLASSES,
    STORAGE_PROFILES,
)
from ..cdiconfig.featuregates import gate_enabled
from ..runtime import Controller, Informer, Manager, Request, Result
from . import claim, conditions, phases, render

log = logging.getLogger(__name__)

NAME = "datavolume-import-controller"
CONFIG_NAME = "config"
ERR_CLAIM_NOT_VALID = c.EVENT_ERR_CLAIM_NOT_VALID
SOURCE_NOT_IMPLEMENTED = "SourceNotImplemented"
Obj = dict[str, Any]


def source_not_implemented_message(kind: str) -> str:
    return f"DataVolume source {kind!r} is not implemented yet"


class DataVolumeReconciler:
    def __init__(self, client: KubeClient, dvs: Informer, pvcs: Informer, classes: Informer, profiles: Informer,
                 configs: Informer, defaults: list[Informer], volumes: Informer) -> None:
        self.client = client
        self.dvs = dvs
        self.pvcs = pvcs
        self.classes = classes
        self.profiles = profiles
        self.configs = configs
        self.defaults = defaults
        self.volumes = volumes
        self.recorder = EventRecorder(client, NAME)
        #: UIDs of the DVs already told their source is not implemented.
        self._told: set[str] = set()

    # ---- inputs from the caches ----------------------------------------------------------------------

    def render_context(self) -> render.RenderContext:
        data: dict[str, str] = {}
        # `cdi` first, then `openshift-cnv` (where the seed documentation puts it).
        for informer in self.defaults:
            cm = informer.get(render.DEFAULTS_CONFIG_MAP, informer.namespace or "")
            if cm is not None:
                data = dict(cm.get("data") or {})
                break
        return render.RenderContext(classes=self.classes.list(), profile=lambda n: self.profiles.get(n),
                                    defaults=data, cdi_config=self.configs.get(CONFIG_NAME),
                                    volumes=self.volumes.list())

    def adoption_enabled(self) -> bool:
        return gate_enabled(self.configs.get(CONFIG_NAME), c.FeatureGate.DATA_VOLUME_CLAIM_ADOPTION)

    def wait_for_first_consumer(self, pvc: Obj) -> bool:
        """The PVC's class (or the default one) binds on first consumer, immediate binding was not asked and the
        HonorWaitForFirstConsumer gate is on (off, the importer pod is the first consumer: phase Pending)."""
        if c.ANN_IMMEDIATE_BINDING in (pvc["metadata"].get("annotations") or {}):
            return False
        if not gate_enabled(self.configs.get(CONFIG_NAME), c.FeatureGate.HONOR_WAIT_FOR_FIRST_CONSUMER):
            return False
        name = (pvc.get("spec") or {}).get("storageClassName")
        sc = render.storage_class(name, self.classes.list(), c.ContentType.ARCHIVE)
        return sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"

    # ---- reconcile -----------------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        dv = self.dvs.get(request.name, request.namespace)
        if dv is None or dv["metadata"].get("deletionTimestamp"):
            # Deleting the DV deletes its PVC through the ownerReference (garbage collection).
            return Result()
        dv = copy.deepcopy(dv)
        kind = claim.source_kind(dv)
        if kind is None:
            return Result()  # no source: a populator DV or nothing to do, as upstream's nop
        if kind in claim.CLONE_SOURCES:
            return Result()  # the pvc-clone controller's (clone_controller.py)
        if kind not in claim.IMPLEMENTED_SOURCES:
            # One event, and no writes to the DV: the controller of that source (upload, clone...) will own
            # its status, and until then nothing here fights a status someone else writes.
            uid = dv["metadata"].get("uid", "")
            if uid not in self._told:
                self._told.add(uid)
                await self.recorder.warning(dv, SOURCE_NOT_IMPLEMENTED, source_not_implemented_message(kind))
            return Result()
        pvc = self.pvcs.get(request.name, request.namespace)
        if pvc is not None:
            pvc = copy.deepcopy(pvc)
            if not await self._validate_claim(dv, pvc):
                return Result()
            await self._mark_prepopulated(dv, pvc)
        elif c.ANN_PRE_POPULATED not in (dv["metadata"].get("annotations") or {}):
            created = await self._create_claim(dv)
            if created is None:
                return Result()
            pvc = created
        await self._update_status(dv, pvc)
        return Result()

    async def _validate_claim(self, dv: Obj, pvc: Obj) -> bool:
        """validatePVC: a PVC being deleted waits; one not ours is adopted only when it needs no work."""
        name = pvc["metadata"]["name"]
        if pvc["metadata"].get("deletionTimestamp"):
            await self.recorder.warning(dv, phases.ERR_MARKED_FOR_DELETION, phases.MSG_MARKED_FOR_DELETION.format(name))
            return False
        if claim.controlled_by(pvc, dv):
            return True
        if phases.requires_work(pvc, dv, self.adoption_enabled()) or claim.controller_of(pvc) is not None:
            await self.recorder.warning(dv, phases.ERR_RESOURCE_EXISTS, phases.MSG_RESOURCE_EXISTS.format(name))
            return False
        pvc["metadata"].setdefault("ownerReferences", []).append(claim.owner_reference(dv))
        updated = await self.client.update(PERSISTENT_VOLUME_CLAIMS, pvc)
        pvc.clear()
        pvc.update(updated)
        return True

    async def _mark_prepopulated(self, dv: Obj, pvc: Obj) -> None:
        """handlePrePopulation: a bound PVC populated for this DV marks the DV prePopulated (no import)."""
        annotations = dv["metadata"].get("annotations") or {}
        if ((pvc.get("status") or {}).get("phase") == "Bound" and phases.populated_for(pvc, dv)
                and c.ANN_PRE_POPULATED not in annotations):
            patch = {"metadata": {"annotations": {c.ANN_PRE_POPULATED: pvc["metadata"]["name"]}}}
            updated = await self.client.patch(DATA_VOLUMES, dv["metadata"]["name"], patch,
                                              dv["metadata"]["namespace"])
            dv["metadata"] = updated["metadata"]

    async def _create_claim(self, dv: Obj) -> Obj | None:
        ctx = self.render_context()
        try:
            spec = render.render_pvc_spec(dv, ctx)
        except render.ClaimNotValid as e:
            await self._write_status(dv, None, phase=c.DataVolumePhase.UNSET, reason=ERR_CLAIM_NOT_VALID,
                                     message=e.message,
                                     event=phases.Event("Warning", ERR_CLAIM_NOT_VALID, e.event or e.message))
            return None
        body = claim.new_claim(dv, spec, render.preallocation(dv, ctx.cdi_config))
        try:
            created = await self.client.create(PERSISTENT_VOLUME_CLAIMS, body)
        except AlreadyExists:
            return None  # the cache is behind: its ADDED event brings us back
        except APIStatusError as e:
            if "exceeded quota:" in e.message:
                await self._write_status(dv, None, phase=c.DataVolumePhase.PENDING, reason=c.EVENT_ERR_EXCEEDED_QUOTA,
                                         message=e.message,
                                         event=phases.Event("Warning", c.EVENT_ERR_EXCEEDED_QUOTA, e.message))
            raise
        log.info("created PVC %s/%s for DataVolume", body["metadata"]["namespace"], body["metadata"]["name"])
        return created

    async def _update_status(self, dv: Obj, pvc: Obj | None) -> None:
        wffc = pvc is not None and self.wait_for_first_consumer(pvc)
        status, event = phases.next_status(dv, pvc, wffc=wffc, adoption_enabled=self.adoption_enabled())
        old_conditions = copy.deepcopy((dv.get("status") or {}).get("conditions") or [])
        conditions.update_all(status, pvc)
        await self._emit(dv, status, old_conditions, event)

    async def _write_status(self, dv: Obj, pvc: Obj | None, *, phase: str, reason: str, message: str,
                            event: phases.Event) -> None:
        """updateDataVolumeStatusPhaseWithEvent: a phase set by the sync, conditions carrying its reason; the
        event is recorded whenever that changes the status (upstream's renderer records it on every try)."""
        status = copy.deepcopy(dv.get("status") or {})
        old_conditions = copy.deepcopy(status.get("conditions") or [])
        status["phase"] = phase
        if not status.get("progress"):
            status["progress"] = phases.PROGRESS_NONE
        conditions.update_all(status, pvc, reason if pvc is None else "", message if pvc is None else "")
        updated = await self._emit(dv, status, old_conditions, None)
        if updated is not None:
            await self.recorder.event(updated, event.type, event.reason, event.message)

    async def _emit(self, dv: Obj, status: Obj, old_conditions: list[Obj],
                    event: phases.Event | None) -> Obj | None:
        """emitEvent: write the status if it changed, then the phase event and the condition events; the
        updated DataVolume, or None when nothing was written."""
        old = dv.get("status") or {}
        if status == old:
            return None
        meta = dv["metadata"]
        try:
            updated = await self.client.patch_status(DATA_VOLUMES, meta["name"], {"status": status},
                                                     meta["namespace"])
        except NotFound:
            return None
        if event is not None and old.get("phase", "") != status.get("phase", ""):
            await self.recorder.event(updated, event.type, event.reason, event.message)
        await self._condition_events(updated, status, old_conditions)
        return updated

    async def _condition_events(self, dv: Obj, status: Obj, old_conditions: list[Obj]) -> None:
        current = status.get("conditions") or []
        bound, old_bound = conditions.find(current, conditions.BOUND), conditions.find(old_conditions,
                                                                                         conditions.BOUND)
        if bound is not None and (old_bound is None or any(bound.get(k) != old_bound.get(k)
                                                           for k in ("status", "reason", "message"))):
            await self.recorder.normal(dv, bound.get("reason", ""), bound.get("message", ""))
        ready, running = conditions.find(current, conditions.READY), conditions.find(current, conditions.RUNNING)
        old_running = conditions.find(old_conditions, conditions.RUNNING)
        if ready is None or bound is None or running is None:
            return
        if (ready.get("status") == conditions.FALSE and running.get("status") == conditions.FALSE
                and bound.get("status") == conditions.TRUE):
            message = running.get("message", "")
            # Scratch space is handled by the import controller: not worth a warning.
            if message and message != "scratch space required and none found" and (
                    old_running is None or old_running.get("message", "") != message):
                await self.recorder.warning(dv, running.get("reason", ""), message)


def add_to_manager(manager: Manager, workers: int = 3) -> Controller:
    dvs = manager.informer(DATA_VOLUMES)
    pvcs = manager.informer(PERSISTENT_VOLUME_CLAIMS)
    classes = manager.informer(STORAGE_CLASSES)
    profiles = manager.informer(STORAGE_PROFILES)
    configs = manager.informer(CDI_CONFIGS)
    volumes = manager.informer(PERSISTENT_VOLUMES)
    defaults = [manager.informer(CONFIG_MAPS, ns) for ns in render.DEFAULTS_NAMESPACES]
    reconciler = DataVolumeReconciler(manager.client, dvs, pvcs, classes, profiles, configs, defaults, volumes)
    controller = Controller(NAME, reconciler, workers=workers)

    def dvs_of_claim(pvc: Obj) -> list[Request]:
        meta = pvc.get("metadata") or {}
        ns = meta.get("namespace") or ""
        out = []
        owner = claim.controller_of(pvc)
        if owner is not None and owner.get("kind") == "DataVolume":
            out.append(Request(owner.get("name", ""), ns))
        populated = (meta.get("annotations") or {}).get(c.ANN_POPULATED_FOR)
        if populated:
            out.append(Request(populated, ns))
        # A PVC named as a DataVolume may be adopted by it (or block it): let the DV see it come and go.
        if dvs.get(meta.get("name", ""), ns) is not None:
            out.append(Request(meta.get("name", ""), ns))
        return out

    def dvs_without_claim(_obj: Obj) -> list[Request]:
        """A class, profile, defaults ConfigMap, CDIConfig or PV changed: DVs still waiting for their PVC."""
        out = []
        for dv in dvs.list():
            meta = dv["metadata"]
            if pvcs.get(meta["name"], meta.get("namespace", "")) is None:
                out.append(Request(meta["name"], meta.get("namespace", "")))
        return out

    def defaults_map(cm: Obj) -> list[Request]:
        return dvs_without_claim(cm) if cm["metadata"].get("name") == render.DEFAULTS_CONFIG_MAP else []

    controller.watch(dvs)
    controller.watch(pvcs, dvs_of_claim)
    for informer in (classes, profiles, configs, volumes):
        controller.watch(informer, dvs_without_claim)
    for informer in defaults:
        controller.watch(informer, defaults_map)
    manager.add(controller)
    return controller
