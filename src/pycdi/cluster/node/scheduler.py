"""The scheduler for the one node: node affinity, PV node affinity, WaitForFirstConsumer claims, binding."""

from __future__ import annotations

import copy
import logging
from collections.abc import Hashable, Iterable
from typing import Any

from ..apiserver import errors
from ..apiserver.service import ObjectService, WriteContext
from ..apiserver.store import Event, RevisionMismatch
from ..control.loops import Loop, builtin
from .affinity import pod_matches_node, pv_matches_node
from .events import Recorder
from .status import merge_conditions, now
from .volumes import claim_names

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SCHEDULER_NAME = "default-scheduler"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PREEMPTION = "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."


class Unschedulable(Exception):
    """The pod fits no node; the message is kube's FitError text."""


def fit_error(reason: str, prefilter: bool = False) -> str:
    """kube-scheduler's message: per-node reasons counted ("1 node(s) ..."), or a PreFilter's reason as is."""
    what = reason if prefilter else f"1 {reason}"
    return f"0/1 nodes are available: {what}. {PREEMPTION}"


class Scheduler(Loop):
    """Assigns pods of the default scheduler to this node when they fit, as kube-scheduler does."""

    name = "scheduler"
    resync_seconds = 30.0

    def __init__(self, service: ObjectService, node_name: str) -> None:
        super().__init__(service)
        self.node_name = node_name
        self.pods = builtin(service, "", "pods")
        self.pvcs = builtin(service, "", "persistentvolumeclaims")
        self.recorder = Recorder(service, SCHEDULER_NAME)
        #: Pods waiting to be scheduled: retried when claims, volumes, classes or the node change.
        self.waiting: set[tuple[str, str]] = set()

    def on_event(self, event: Event) -> None:
        if event.key == "core/pods":
            spec = (event.object or {}).get("spec") or {}
            if event.type != "DELETED" and not spec.get("nodeName"):
                self.queue.add((event.namespace, event.name))
            elif event.type == "DELETED":
                self.waiting.discard((event.namespace, event.name))
        elif event.key in ("core/persistentvolumeclaims", "core/persistentvolumes", "core/nodes",
                           "storage.k8s.io/storageclasses"):
            for key in list(self.waiting):
                self.queue.add(key)

    def initial_keys(self) -> Iterable[Hashable]:
        return [(p["metadata"]["namespace"], p["metadata"]["name"])
                for p in self.store.iter_objects(self.pods.storage_key)
                if not (p.get("spec") or {}).get("nodeName")]

    async def reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        namespace, name = key
        pod = self.service.find(self.pods, namespace, name)
        spec = (pod or {}).get("spec") or {}
        if pod is None or spec.get("nodeName") or pod["metadata"].get("deletionTimestamp") or \
                (spec.get("schedulerName") or SCHEDULER_NAME) != SCHEDULER_NAME:
            self.waiting.discard(key)
            return
        node = self.store.get("core/nodes", "", self.node_name)
        if node is None:
            self.waiting.add(key)  # the node registers itself first; its ADDED event retries this
            return
        try:
            pending = self._check(pod, node)
        except Unschedulable as e:
            self.waiting.add(key)
            await self._unschedulable(pod, str(e))
            return
        if pending:
            # WaitForFirstConsumer: the claims get this node; the pod is bound once they are (PreBind waits).
            self.waiting.add(key)
            for claim in pending:
                await self._select_node(claim)
            return
        self.waiting.discard(key)
        await self._bind(pod)

    def _check(self, pod: Obj, node: Obj) -> list[Obj]:
        """Raise Unschedulable, or return the unbound WaitForFirstConsumer claims still to provision."""
        namespace = pod["metadata"]["namespace"]
        claims: list[Obj] = []
        for name in claim_names(pod):
            pvc = self.store.get("core/persistentvolumeclaims", namespace, name)
            if pvc is None:
                raise Unschedulable(fit_error(f'persistentvolumeclaim "{name}" not found', prefilter=True))
            if pvc["metadata"].get("deletionTimestamp"):
                raise Unschedulable(fit_error(f'persistentvolumeclaim "{name}" is being deleted', prefilter=True))
            claims.append(pvc)
        unbound: list[Obj] = []
        for pvc in claims:
            if (pvc.get("spec") or {}).get("volumeName"):
                continue
            class_name = (pvc.get("spec") or {}).get("storageClassName")
            sc = self.store.get("storage.k8s.io/storageclasses", "", str(class_name)) if class_name else None
            if sc is None or sc.get("volumeBindingMode") != "WaitForFirstConsumer":
                raise Unschedulable(fit_error("pod has unbound immediate PersistentVolumeClaims", prefilter=True))
            unbound.append(pvc)
        if not pod_matches_node(pod, node):
            raise Unschedulable(fit_error("node(s) didn't match Pod's node affinity/selector"))
        for pvc in claims:
            volume = (pvc.get("spec") or {}).get("volumeName")
            if not volume:
                continue
            pv = self.store.get("core/persistentvolumes", "", str(volume))
            if pv is None:
                raise Unschedulable(fit_error("node(s) unavailable due to one or more pvc(s) bound to "
                                              "non-existent pv(s)"))
            if not pv_matches_node(pv, node):
                raise Unschedulable(fit_error("node(s) had volume node affinity conflict"))
        return unbound

    async def _select_node(self, pvc: Obj) -> None:
        annotations = pvc["metadata"].get("annotations") or {}
        if annotations.get(SELECTED_NODE) == self.node_name:
            return
        pvc = copy.deepcopy(pvc)
        pvc["metadata"].setdefault("annotations", {})[SELECTED_NODE] = self.node_name
        self.service.present(self.pvcs, pvc)
        await self.service.update(self.pvcs, pvc["metadata"]["namespace"], pvc["metadata"]["name"], pvc,
                                  WriteContext(field_manager="kube-scheduler"), require_rv=True)

    async def _bind(self, pod: Obj) -> None:
        """pods/binding semantics: spec.nodeName set by the registry (not a client update) plus PodScheduled."""
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        bound = copy.deepcopy(pod)
        bound["spec"]["nodeName"] = self.node_name
        bound["status"] = dict(bound.get("status") or {})
        bound["status"]["conditions"] = merge_conditions(
            bound["status"].get("conditions") or [], [{"type": "PodScheduled", "status": "True"}], now())
        try:
            # kube's binding REST writes the stored pod directly: pod update validation forbids nodeName.
            self.store.update(self.pods.storage_key, namespace, name, bound,
                              expected_rev=int(meta.get("resourceVersion") or 0))
        except RevisionMismatch:
            raise errors.conflict("", "pods", name) from None
        await self.recorder.record(pod, "Normal", "Scheduled",
                                   f"Successfully assigned {namespace}/{name} to {self.node_name}")

    async def _unschedulable(self, pod: Obj, message: str) -> None:
        status = dict(pod.get("status") or {})
        old = [c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"]
        if old and old[0].get("status") == "False" and old[0].get("message") == message:
            return
        status["conditions"] = merge_conditions(status.get("conditions") or [], [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}], now())
        meta = pod["metadata"]
        try:
            await self.service.update(self.pods, meta["namespace"], meta["name"], {**pod, "status": status},
                                      WriteContext(), "status")
        except errors.APIError as e:
            if e.code != 404:
                raise
            return
        await self.recorder.record(pod, "Warning", "FailedScheduling", message)
