"""The phases of a clone populator plan (upstream's `pkg/controller/clone`): each makes or checks one object and
says whether the plan may go on (None) or waits (a Result).

- CSIClone: `tmp-pvc-<target uid>` in the source namespace with the source as `dataSourceRef`, requesting the
  source's capacity (the provisioner clones it);
- Snapshot / SnapshotClone: `tmp-snapshot-<uid>` of the source, restored into `tmp-pvc-<uid>`;
- HostClone: `tmp-pvc-<uid>` with `k8s.io/CloneRequest`, filled by the host-assisted clone controller;
- PrepClaim: the temporary claim bound (a pod consumes a WaitForFirstConsumer one) and grown to the target's request;
- Rebind: the temporary claim's PV given to the target (`claimRef` with the target's UID; the binder binds it).
Everything made carries `cdi.kubevirt.io/OwnedByUID=<target uid>`, which the cleanup deletes by.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...api import clone as cl
from ...api import constants as c
from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists, Conflict, NotFound
from ...kube.events import EventRecorder
from ...kube.resources import PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, PODS, VOLUME_SNAPSHOTS
from ..runtime import Informer, Result
from . import common as cm
from . import planner

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SOURCE_WAIT = 2.0
HOST_CLONE_WAIT = 3.0
PROGRESS_DONE = "100.0%"
#: Annotations of the target that must not follow it onto its temporary claim.
_NOT_COPIED_PREFIXES = ("pv.kubernetes.io/", "volume.kubernetes.io/", "volume.beta.kubernetes.io/",
                        "kubectl.kubernetes.io/")
_NOT_COPIED = (c.ANN_CLONE_TOKEN, c.ANN_EXTENDED_CLONE_TOKEN, cl.ANN_CLONE_PHASE, cl.ANN_CLONE_ERROR,
               c.ANN_POPULATOR_PROGRESS, c.ANN_CLONE_TYPE, c.ANN_CLONE_FALLBACK_REASON, cl.ANN_DATA_SOURCE_NAMESPACE,
               c.ANN_RUNNING_CONDITION, c.ANN_RUNNING_CONDITION_MESSAGE, c.ANN_RUNNING_CONDITION_REASON)


class Context(Protocol):
    """What the phases use of the populator."""

    client: KubeClient
    i: dict[str, Informer]
    recorder: EventRecorder
    image: str

    def pvc(self, name: str, namespace: str) -> Obj | None: ...

    def data_volume(self, name: str, namespace: str) -> Obj | None: ...


class PhaseError(Exception):
    """The plan cannot go on: the target's phase becomes Error with this message."""


@dataclass
class PhaseStatus:
    progress: str = ""
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class Phase:
    name: str
    #: None: done, go on; a Result: wait here.
    reconcile: Callable[[], Awaitable[Result | None]]
    status: Callable[[], PhaseStatus] | None = None


async def delete(client: KubeClient, resource: Any, obj: Obj) -> None:
    try:
        await client.delete(resource, cm.name_of(obj), cm.namespace_of(obj) or None, uid=cm.uid_of(obj) or None,
                            propagation_policy="Background")
    except (NotFound, Conflict):
        pass


class Plan:
    """The phases of one target's clone, sharing what they read."""

    def __init__(self, owner: Context, target: Obj, vcs: Obj, source_ns: str, source_name: str,
                 snapshot_class: str) -> None:
        self.p = owner
        self.target = target
        self.vcs = vcs
        self.source_ns = source_ns
        self.source_name = source_name
        self.snapshot_class = snapshot_class
        self.tmp_name = cm.tmp_claim_name(target)

    def phases(self, strategy: str) -> list[Phase]:
        prep = Phase(cl.PHASE_PREP_CLAIM, self.prep_claim)
        rebind = Phase(cl.PHASE_REBIND, self.rebind)
        if strategy == planner.CSI_CLONE:
            return [Phase(cl.PHASE_CSI_CLONE, self.csi_clone), prep, rebind]
        if strategy == planner.SNAPSHOT:
            return [Phase(cl.PHASE_SNAPSHOT, self.snapshot), Phase(cl.PHASE_SNAPSHOT_CLONE, self.snapshot_clone),
                    prep, rebind]
        if strategy == planner.COPY:
            return [Phase(cl.PHASE_HOST_CLONE, self.host_clone, self.host_clone_status), rebind]
        raise PhaseError(f"unknown strategy/source {strategy}")

    # ---- shared ---------------------------------------------------------------------------------------------

    def tmp(self) -> Obj | None:
        return self.p.pvc(self.tmp_name, self.source_ns)

    def desired_claim(self) -> Obj:
        """createDesiredClaim: the target's labels, annotations and spec, in the source namespace, no data source."""
        target = self.target
        annotations = {k: v for k, v in cm.annots(target).items()
                       if k not in _NOT_COPIED and not k.startswith(_NOT_COPIED_PREFIXES)}
        annotations[cl.ANN_EVENT_SOURCE_KIND] = "PersistentVolumeClaim"
        annotations[cl.ANN_EVENT_SOURCE] = f"{cm.namespace_of(target)}/{cm.name_of(target)}"
        annotations[c.ANN_POPULATOR_KIND] = cl.VOLUME_CLONE_SOURCE_KIND
        labels = {**cm.labels(target), **cm.owned_by_label(cm.uid_of(target)), cl.LABEL_EXCLUDE_FROM_BACKUP: "true"}
        spec = copy.deepcopy(cm.spec(target))
        for key in ("dataSource", "dataSourceRef", "volumeName"):
            spec.pop(key, None)
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": self.tmp_name, "namespace": self.source_ns, "labels": labels,
                             "annotations": annotations},
                "spec": spec}

    async def create(self, resource: Any, body: Obj) -> None:
        try:
            await self.p.client.create(resource, body)
            log.info("created %s %s/%s for clone target %s/%s", resource.kind, body["metadata"]["namespace"],
                     body["metadata"]["name"], cm.namespace_of(self.target), cm.name_of(self.target))
        except AlreadyExists:
            pass  # the cache is behind our own write

    async def source_ready(self) -> bool:
        """IsSourceClaimReady: exists, Bound, populated, and no pod writes to it (read-only users are fine)."""
        source = self.p.pvc(self.source_name, self.source_ns)
        if source is None or not cm.is_bound(source):
            return False
        users = cm.pods_using(self.p.i["pods"].list(self.source_ns), self.source_name, allow_read_only=True)
        for pod in users:
            await self.p.recorder.warning(self.target, cl.CLONE_SOURCE_IN_USE, cl.MSG_CLONE_SOURCE_IN_USE.format(
                cm.namespace_of(pod), cm.name_of(pod), self.source_name))
        return not users and cm.is_populated(source, self.p.data_volume)

    def bound_or_wffc(self, pvc: Obj) -> bool:
        if cm.is_bound(pvc):
            return True
        sc = self.p.i["classes"].get(str(cm.spec(pvc).get("storageClassName") or ""))
        return sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"

    # ---- phases ---------------------------------------------------------------------------------------------

    async def csi_clone(self) -> Result | None:
        tmp = self.tmp()
        if tmp is None:
            if not await self.source_ready():
                return Result(requeue_after=SOURCE_WAIT)
            source = self.p.pvc(self.source_name, self.source_ns)
            assert source is not None
            claim = self.desired_claim()
            claim["spec"]["dataSourceRef"] = {"kind": "PersistentVolumeClaim", "name": self.source_name}
            claim["spec"]["dataSource"] = {"kind": "PersistentVolumeClaim", "name": self.source_name}
            capacity = (cm.status(source).get("capacity") or {}).get("storage")
            if capacity:
                claim["spec"].setdefault("resources", {}).setdefault("requests", {})["storage"] = capacity
            await self.create(PERSISTENT_VOLUME_CLAIMS, claim)
            return Result()
        return None if self.bound_or_wffc(tmp) else Result()

    async def snapshot(self) -> Result | None:
        name = cm.tmp_snapshot_name(self.target)
        snap = self.p.i["snapshots"].get(name, self.source_ns)
        if snap is None:
            if self.tmp() is not None:
                return None  # restored already (the snapshot may be gone with the cleanup of a restart)
            if not await self.source_ready():
                return Result(requeue_after=SOURCE_WAIT)
            body = {"apiVersion": VOLUME_SNAPSHOTS.api_version, "kind": "VolumeSnapshot",
                    "metadata": {"name": name, "namespace": self.source_ns,
                                 "labels": {**cm.owned_by_label(cm.uid_of(self.target)),
                                            cl.LABEL_EXCLUDE_FROM_BACKUP: "true"},
                                 "annotations": {cl.ANN_EVENT_SOURCE_KIND: "PersistentVolumeClaim",
                                                 cl.ANN_EVENT_SOURCE: f"{cm.namespace_of(self.target)}/"
                                                                      f"{cm.name_of(self.target)}"}},
                    "spec": {"source": {"persistentVolumeClaimName": self.source_name},
                             "volumeSnapshotClassName": self.snapshot_class}}
            await self.create(VOLUME_SNAPSHOTS, body)
            return Result()
        error = cm.status(snap).get("error") or {}
        if error.get("message") and not cm.status(snap).get("readyToUse"):
            log.info("snapshot %s/%s: %s", self.source_ns, name, error["message"])
        return None if cm.status(snap).get("readyToUse") is True else Result()

    async def snapshot_clone(self) -> Result | None:
        tmp = self.tmp()
        if tmp is None:
            name = cm.tmp_snapshot_name(self.target)
            snap = self.p.i["snapshots"].get(name, self.source_ns)
            if snap is None or cm.status(snap).get("readyToUse") is not True:
                return Result()
            claim = self.desired_claim()
            ref = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": name}
            claim["spec"]["dataSourceRef"] = dict(ref)
            claim["spec"]["dataSource"] = dict(ref)
            restore = cm.status(snap).get("restoreSize")
            if restore and cm._bytes(restore):
                claim["spec"].setdefault("resources", {}).setdefault("requests", {})["storage"] = restore
            await self.create(PERSISTENT_VOLUME_CLAIMS, claim)
            return Result()
        return None if self.bound_or_wffc(tmp) else Result()

    async def prep_claim(self) -> Result | None:
        """PrepClaimPhase: the temporary claim bound and at least as large as the target asks."""
        tmp = self.tmp()
        if tmp is None:
            raise PhaseError(f"claim {self.source_ns}/{self.tmp_name} does not exist")
        requested, current = cm.request_bytes(self.target), cm.request_bytes(tmp)
        actual = cm.capacity_bytes(tmp)
        if requested is None or current is None:
            raise PhaseError("requested PVC sizes missing")
        pod_name = f"prep-{cm.uid_of(self.target)}"
        pod = self.p.i["pods"].get(pod_name, self.source_ns)
        need_pod = False
        if actual is None:
            if cm.is_bound(tmp):
                raise PhaseError("actual PVC size missing")
            need_pod = True  # WaitForFirstConsumer: a consumer makes it bind
        else:
            if current < requested:
                wanted = (cm.spec(self.target).get("resources") or {}).get("requests", {}).get("storage")
                await self.p.client.patch(PERSISTENT_VOLUME_CLAIMS, self.tmp_name,
                                          {"spec": {"resources": {"requests": {"storage": wanted}}}}, self.source_ns)
                return Result()
            if actual < requested:
                return Result()  # the resizer grows it; the claim's update brings us back
        if not need_pod and pod is None:
            return None
        if pod is not None and cm.status(pod).get("phase") == "Succeeded":
            await delete(self.p.client, PODS, pod)
        if need_pod and pod is None:
            await self.create(PODS, self._prep_pod(pod_name, tmp))
        return Result()

    def _prep_pod(self, name: str, tmp: Obj) -> Obj:
        container: Obj = {"name": "dummy", "image": self.p.image, "command": ["true"]}
        if cm.volume_mode(tmp) == cm.BLOCK:
            container["volumeDevices"] = [{"name": "cdi-data-vol", "devicePath": "/dev/cdi-block-volume"}]
        else:
            container["volumeMounts"] = [{"name": "cdi-data-vol", "mountPath": cl.SOURCE_MOUNT_PATH}]
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": self.source_ns,
                             "labels": {cm.CDI_LABEL[0]: cm.CDI_LABEL[1], "cdi.kubevirt.io": "cdi-populator-prep",
                                        **cm.owned_by_label(cm.uid_of(self.target))},
                             "annotations": {c.ANN_CREATED_BY: "yes"}},
                "spec": {"containers": [container], "restartPolicy": "OnFailure",
                         "volumes": [{"name": "cdi-data-vol",
                                      "persistentVolumeClaim": {"claimName": self.tmp_name}}]}}

    async def rebind(self) -> Result | None:
        """RebindPhase: the temporary claim's PV now belongs to the target (the binder completes the binding)."""
        target = self.p.pvc(cm.name_of(self.target), cm.namespace_of(self.target))
        if target is None:
            raise PhaseError("target claim does not exist")
        if cm.spec(target).get("volumeName"):
            return None
        tmp = self.tmp()
        if tmp is None:
            raise PhaseError("source claim does not exist")
        pv_name = str(cm.spec(tmp).get("volumeName") or "")
        pv = self.p.i["pvs"].get(pv_name) if pv_name else None
        if pv is None:
            raise PhaseError(f"PV {pv_name} of claim {self.source_ns}/{self.tmp_name} not found")
        ref = cm.spec(pv).get("claimRef") or {}
        if not ref:
            raise PhaseError(f"PV {pv_name} claimRef is nil")
        if ref.get("namespace") == cm.namespace_of(target) and ref.get("name") == cm.name_of(target) \
                and ref.get("uid") == cm.uid_of(target):
            return Result()  # rebound: the binder binds the target next
        if not (ref.get("namespace") == self.source_ns and ref.get("name") == self.tmp_name):
            raise PhaseError(f"PV {pv_name} bound to unexpected claim {ref.get('name')}")
        claim_ref = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": cm.namespace_of(target),
                     "name": cm.name_of(target), "uid": cm.uid_of(target),
                     "resourceVersion": str(cm.meta(target).get("resourceVersion") or "")}
        await self.p.client.patch(PERSISTENT_VOLUMES, pv_name, {"metadata": {"resourceVersion": cm.meta(pv).get(
            "resourceVersion")}, "spec": {"claimRef": claim_ref}})
        log.info("rebound PV %s from %s/%s to %s/%s", pv_name, self.source_ns, self.tmp_name,
                 cm.namespace_of(target), cm.name_of(target))
        return Result()

    async def host_clone(self) -> Result | None:
        tmp = self.tmp()
        if tmp is None:
            claim = self.desired_claim()
            ann = claim["metadata"]["annotations"]
            ann[cl.ANN_CLONE_REQUEST] = f"{self.source_ns}/{self.source_name}"
            ann[c.ANN_OWNER_UID] = cm.uid_of(self.target)
            ann[c.ANN_POD_RESTARTS] = "0"
            ann[c.ANN_PREALLOCATION_REQUESTED] = "true" if cm.spec(self.vcs).get("preallocation") else "false"
            ann[c.ANN_IMMEDIATE_BINDING] = ""
            priority = cm.spec(self.vcs).get("priorityClassName")
            if priority:
                ann[c.ANN_POD_PRIORITY_CLASS_NAME] = str(priority)
            await self.create(PERSISTENT_VOLUME_CLAIMS, claim)
            return Result(requeue_after=HOST_CLONE_WAIT)
        ann = cm.annots(tmp)
        if cm.flag(ann.get(c.ANN_PREALLOCATION_REQUESTED)) and ann.get(c.ANN_PREALLOCATION_APPLIED) != "true":
            return Result(requeue_after=HOST_CLONE_WAIT)
        if ann.get(c.ANN_POD_PHASE) != "Succeeded":
            if ann.get(c.ANN_IMPORT_FATAL_ERROR) == "true":
                raise PhaseError(ann.get(c.ANN_RUNNING_CONDITION_MESSAGE) or "host-assisted clone failed")
            return Result(requeue_after=HOST_CLONE_WAIT)
        return None

    def host_clone_status(self) -> PhaseStatus:
        tmp = self.tmp()
        if tmp is None:
            return PhaseStatus()
        ann = dict(cm.annots(tmp))
        progress = PROGRESS_DONE if ann.get(c.ANN_POD_PHASE) == "Succeeded" else ann.get(c.ANN_POPULATOR_PROGRESS, "")
        return PhaseStatus(progress, ann)
