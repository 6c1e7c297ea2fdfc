"""The ObjectTransfer controller (upstream's transfer-controller): the finalizer, the phases, and the watches that
bring a waiting transfer back when its cause goes away."""

from __future__ import annotations

import copy
import logging
from typing import Any

import aiohttp

from ...api import constants as c
from ...kube.client import KubeClient
from ...kube.errors import APIStatusError, Conflict
from ...kube.resources import DATA_VOLUMES, PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, PODS
from ..runtime import Controller, Informer, Manager, RateLimitingQueue, Request, Result
from . import state
from .api import OBJECT_TRANSFERS, Api, Transfer
from .base import DONE, NEXT, Handler
from .crashhook import CrashHook
from .dv import DataVolumeTransfer
from .pvc import PVCTransfer

log = logging.getLogger(__name__)

NAME = "transfer-controller"
Obj = dict[str, Any]
P = c.ObjectTransferPhase
#: OTs by the objects they wait on: "<kind>/<namespace>/<name>" of source and target (upstream's field index).
OBJECT_INDEX = "object"
#: OTs by the PV they move (status.data.pvName).
PV_INDEX = "pv"


def object_key(kind: str, namespace: str, name: str) -> str:
    return f"{kind.lower()}/{namespace}/{name}"


def index_objects(ot: Obj) -> list[str]:
    kind = state.kind(ot)
    finished = (ot.get("status") or {}).get("phase") == P.COMPLETE and not ot["metadata"].get("finalizers")
    if not kind or finished:
        return []  # a finished transfer has nothing to wait for
    src = state.source(ot)
    return [object_key(kind, str(src.get("namespace") or ""), str(src.get("name") or "")),
            object_key(kind, state.target_namespace(ot), state.target_name(ot))]


def index_pv(ot: Obj) -> list[str]:
    name = ((ot.get("status") or {}).get("data") or {}).get(state.DATA_PV_NAME)
    return [str(name)] if name else []


class TransferReconciler:
    def __init__(self, client: KubeClient, pods: Informer, hook: CrashHook | None = None) -> None:
        self.api = Api(client, hook or CrashHook.from_env())
        self.handlers: dict[str, Handler] = {state.KIND_PVC: PVCTransfer(self.api, pods),
                                             state.KIND_DV: DataVolumeTransfer(self.api, pods)}

    async def reconcile(self, request: Request) -> Result:
        ot = await self.api.get(OBJECT_TRANSFERS, request.name)
        if ot is None:
            return DONE
        t = Transfer(ot, self.api)
        try:
            return await self._reconcile(t)
        except (Conflict, aiohttp.ClientError, OSError):
            raise  # a stale read or a lost connection: retried as is, not worth an Error phase
        except (APIStatusError, LookupError, ValueError) as e:
            # setCompleteConditionError: a Running transfer shows Error (and retries) until a step succeeds.
            reason = e.message if isinstance(e, APIStatusError) else str(e)
            await t.set(state.MSG_ERROR, reason, phase=P.ERROR if t.phase == P.RUNNING else None)
            raise

    async def _reconcile(self, t: Transfer) -> Result:
        phase = t.phase
        handler = self.handlers.get(state.kind(t.ot))
        if phase == P.UNSET:
            # Deleted before it started: nothing was touched (and no finalizer may be added any more).
            return DONE if t.deleting else await self._initialize(t)
        if phase == P.COMPLETE:
            await self._remove_finalizer(t)
            return DONE
        if phase == P.PENDING and t.deleting:
            if handler is not None:
                await handler.release_source(t)
            await self._remove_finalizer(t)
            return DONE
        if handler is None:
            raise ValueError(f"invalid kind {state.source(t.ot).get('kind')!r}")
        if phase == P.PENDING:
            return await handler.pending(t)
        if phase == P.ERROR and state.condition_message(t.ot) in state.PERMANENT_ERRORS:
            # Nothing a retry fixes; a deletion is let through (upstream lets any Error through).
            if t.deleting:
                await self._remove_finalizer(t)
            return DONE
        # Running, or Error from a failed step (retried: the step that fails again keeps it there). A deleted
        # transfer that is under way finishes first: stopping half-way would leave the volume between claims.
        return await handler.running(t)

    async def _initialize(self, t: Transfer) -> Result:
        """reconcileEmpty: our finalizer, then Pending."""
        finalizers = list(t.ot["metadata"].get("finalizers") or [])
        if c.FINALIZER_OBJECT_TRANSFER not in finalizers:
            body = copy.deepcopy(t.ot)
            body["metadata"]["finalizers"] = [*finalizers, c.FINALIZER_OBJECT_TRANSFER]
            t.ot = await self.api.update(OBJECT_TRANSFERS, body)
        await t.set(state.MSG_INITIALIZING, phase=P.PENDING)
        return NEXT

    async def _remove_finalizer(self, t: Transfer) -> None:
        finalizers = list(t.ot["metadata"].get("finalizers") or [])
        if c.FINALIZER_OBJECT_TRANSFER in finalizers:
            body = copy.deepcopy(t.ot)
            kept = [f for f in finalizers if f != c.FINALIZER_OBJECT_TRANSFER]
            if kept:
                body["metadata"]["finalizers"] = kept
            else:
                body["metadata"].pop("finalizers", None)
            t.ot = await self.api.update(OBJECT_TRANSFERS, body)


def add_to_manager(manager: Manager, workers: int = 2, hook: CrashHook | None = None) -> Controller:
    transfers = manager.informer(OBJECT_TRANSFERS)
    transfers.add_index(OBJECT_INDEX, index_objects)
    transfers.add_index(PV_INDEX, index_pv)
    pvcs = manager.informer(PERSISTENT_VOLUME_CLAIMS)
    dvs = manager.informer(DATA_VOLUMES)
    pvs = manager.informer(PERSISTENT_VOLUMES)
    pods = manager.informer(PODS)
    hook = hook or CrashHook.from_env()
    if hook.armed:
        workers = 1  # one reconcile at a time: a life ends after exactly one write, at a known step
    reconciler = TransferReconciler(manager.client, pods, hook)
    # A transfer's failed step is retried for as long as it takes (capped at 30 s apart): giving up half-way
    # would leave the volume between claims until some unrelated change.
    queue: RateLimitingQueue[Request] = RateLimitingQueue(base_delay=0.05, max_delay=30.0)
    controller = Controller(NAME, reconciler, workers=workers, max_retries=1 << 30, queue=queue)

    def by_key(*keys: str) -> list[Request]:
        seen = {(t.get("metadata") or {}).get("name", "") for k in keys for t in transfers.by_index(OBJECT_INDEX, k)}
        return [Request(name) for name in sorted(seen) if name]

    def self_and_parent(ot: Obj) -> list[Request]:
        out = [Request(ot["metadata"]["name"])]
        parent = state.spec(ot).get("parentName")
        if parent:
            out.append(Request(str(parent)))
        # A transfer claiming a source may be what another one waits for ("Source in use by another transfer").
        out.extend(by_key(*index_objects(ot)))
        return out

    def of_claim(pvc: Obj) -> list[Request]:
        meta = pvc.get("metadata") or {}
        return by_key(object_key(state.KIND_PVC, meta.get("namespace", ""), meta.get("name", "")),
                      object_key(state.KIND_DV, meta.get("namespace", ""), meta.get("name", "")))

    def of_data_volume(dv: Obj) -> list[Request]:
        meta = dv.get("metadata") or {}
        return by_key(object_key(state.KIND_DV, meta.get("namespace", ""), meta.get("name", "")))

    def of_volume(pv: Obj) -> list[Request]:
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        out = by_key(object_key(state.KIND_PVC, ref.get("namespace", ""), ref.get("name", ""))) if ref else []
        out.extend(Request(t["metadata"]["name"]) for t in transfers.by_index(PV_INDEX, pv["metadata"]["name"]))
        return out

    def of_pod(pod: Obj) -> list[Request]:
        ns = (pod.get("metadata") or {}).get("namespace", "")
        keys = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                keys += [object_key(state.KIND_PVC, ns, claim), object_key(state.KIND_DV, ns, claim)]
        return by_key(*keys) if keys else []

    controller.watch(transfers, self_and_parent)
    controller.watch(pvcs, of_claim)
    controller.watch(dvs, of_data_volume)
    controller.watch(pvs, of_volume)
    controller.watch(pods, of_pod)
    manager.add(controller)
    return controller
