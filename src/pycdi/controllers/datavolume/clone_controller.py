"""The DataVolume PVC-clone controller (upstream's datavolume-pvc-clone-controller): a DataVolume with `source.pvc`
gets its PVC, filled by the clone populator or by the host-assisted clone, and its status from that PVC.

Before the claim exists: the source must exist (else `CloneWithoutSource`), the clone must be valid (content
types, sizes: else `CloneValidationFailed`), a `storage` DataVolume without a size gets the source's (measured by a
pod for a Filesystem disk image), and no pod may be writing to the source (`CloneSourceInUse`, phase
CloneScheduled, re-checked when pods change and every 5 s). The claim is then either populated (a `dataSourceRef`
to `volume-clone-source-<dv uid>`, a VolumeCloneSource in the source namespace: csi-clone, snapshot or host-assisted
into a temporary claim, then the PV rebound; nothing copied across namespaces) or, when it must bind to a static
volume (a selector, a volume name, a free PV of its class, a class without provisioner), filled in place by the
host-assisted clone (`k8s.io/CloneRequest`). A cross-namespace clone carries the admission's token, exchanged for
an extended one bound to the DataVolume's UID and then to the claim's.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ...api import clone as cl
from ...api import constants as c
from ...api.clonetoken import CloneTokens
from ...api.sizes import required_space
from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists, APIStatusError, NotFound
from ...kube.events import EventRecorder
from ...kube.resources import (
    DATA_VOLUMES,
    PERSISTENT_VOLUME_CLAIMS,
    PODS,
    VOLUME_CLONE_SOURCES,
)
from ..cdiconfig.featuregates import gate_enabled
from ..clone import common as cm
from ..clone.phases import delete
from ..runtime import Informer, Request, Result
from . import claim, clone_size, clone_status, conditions, phases, render
from .clone_tokens import TokenExchange

log = logging.getLogger(__name__)

NAME = "datavolume-pvc-clone-controller"
CONFIG_NAME = "config"
SOURCE_IN_USE_WAIT = 5.0
NO_PROVISIONER = "kubernetes.io/no-provisioner"
Obj = dict[str, Any]


def is_clone(dv: Obj) -> bool:
    return claim.source_kind(dv) == "pvc"


def volume_clone_source_name(dv: Obj) -> str:
    return f"{cl.VOLUME_CLONE_SOURCE_PREFIX}-{cm.uid_of(dv)}"


def validate_clone(source: Obj, dv: Obj, ctx: render.RenderContext) -> str:
    """validateClone: "" when the clone may go on, else why not (upstream's messages)."""
    spec = dv.get("spec") or {}
    target_content = render.content_type(dv)
    if cm.content_type(source) != target_content:
        return f"Source contentType ({cm.content_type(source)}) and target contentType ({target_content}) do not match"
    explicit = spec.get("pvc") is not None
    if explicit:
        target = spec["pvc"]
    else:
        target = spec.get("storage") or {}
    requested = cm.request_bytes({"spec": target})
    if requested is None and explicit:
        return "source/target missing storage resource requests"
    if requested is not None and not explicit and (target.get("volumeMode") or "") != cm.BLOCK:
        overhead = render.filesystem_overhead(ctx.cdi_config, target.get("storageClassName"), ctx.classes)
        requested = required_space(overhead, requested)
    if (requested is not None and cm.volume_mode(source) == cm.BLOCK) or explicit:
        source_request = cm.request_bytes(source)
        if source_request is None or requested is None:
            return "source/target missing storage resource requests"
        if source_request > requested:
            return (f"target resources requests storage size is smaller than the source "
                    f"{requested} < {source_request}")
    return ""


class CloneReconciler:
    def __init__(self, client: KubeClient, informers: dict[str, Informer], defaults: list[Informer],
                 tokens: CloneTokens | None, image: str) -> None:
        self.client = client
        self.i = informers
        self.defaults = defaults
        self.tokens = tokens
        self.image = image
        self.recorder = EventRecorder(client, NAME)
        self.exchange = TokenExchange(client, self.recorder, tokens)

    # ---- inputs -------------------------------------------------------------------------------------------

    def config(self) -> Obj | None:
        return self.i["configs"].get(CONFIG_NAME)

    def render_context(self) -> render.RenderContext:
        data: dict[str, str] = {}
        for informer in self.defaults:
            cmap = informer.get(render.DEFAULTS_CONFIG_MAP, informer.namespace or "")
            if cmap is not None:
                data = dict(cmap.get("data") or {})
                break
        return render.RenderContext(classes=self.i["classes"].list(), profile=lambda n: self.i["profiles"].get(n),
                                    defaults=data, cdi_config=self.config(), volumes=self.i["pvs"].list())

    def adoption_enabled(self) -> bool:
        return gate_enabled(self.config(), c.FeatureGate.DATA_VOLUME_CLAIM_ADOPTION)

    def wait_for_first_consumer(self, pvc: Obj) -> bool:
        if c.ANN_IMMEDIATE_BINDING in cm.annots(pvc):
            return False
        if not gate_enabled(self.config(), c.FeatureGate.HONOR_WAIT_FOR_FIRST_CONSUMER):
            return False
        sc = render.storage_class(cm.spec(pvc).get("storageClassName"), self.i["classes"].list(),
                                  c.ContentType.ARCHIVE)
        return sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"

    def use_populator(self, dv: Obj, spec: Obj) -> bool:
        """Whether the claim can be populated (then rebound) rather than filled where it binds.

        Upstream populates when the class's provisioner has a CSIDriver object; this cluster serves none, so:
        the DataVolume's `storage.usePopulator` when given, else a class with a dynamic provisioner and no
        static volume the claim would bind to first (a selector, a volume name, a free PV of its class)."""
        wanted = cm.annots(dv).get(c.ANN_USE_POPULATOR)
        if wanted is not None:
            return cm.flag(wanted)
        name = spec.get("storageClassName")
        # A `pvc` spec without a class gets the default one when created (kube's DefaultStorageClass admission).
        sc = render.storage_class(None if name is None else str(name), self.i["classes"].list(),
                                  c.ContentType.ARCHIVE)
        if sc is None or sc.get("provisioner") in ("", NO_PROVISIONER):
            return False
        if spec.get("selector") or spec.get("volumeName"):
            return False
        mode = spec.get("volumeMode") or cm.FILESYSTEM
        requested = cm.request_bytes({"spec": spec}) or 0
        modes = set(spec.get("accessModes") or [])
        for pv in self.i["pvs"].list():
            pv_spec = cm.spec(pv)
            capacity = cm.request_bytes({"spec": {"resources": {"requests": pv_spec.get("capacity") or {}}}}) or 0
            if (cm.status(pv).get("phase") == "Available" and not pv_spec.get("claimRef")
                    and pv_spec.get("storageClassName", "") == cm.name_of(sc)
                    and (pv_spec.get("volumeMode") or cm.FILESYSTEM) == mode and capacity >= requested
                    and modes <= set(pv_spec.get("accessModes") or [])):
                return False
        return True

    # ---- reconcile ----------------------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        dv = self.i["dvs"].get(request.name, request.namespace)
        if dv is None or not is_clone(dv):
            return Result()
        dv = copy.deepcopy(dv)
        src_ns, src = clone_status.clone_source(dv)
        if cm.meta(dv).get("deletionTimestamp"):
            await self._cleanup(dv, src_ns)
            return Result()
        pvc = self.i["pvcs"].get(request.name, request.namespace)
        if pvc is not None:
            pvc = copy.deepcopy(pvc)
            if not await self._validate_claim(dv, pvc):
                return Result()
        work = pvc is None or phases.requires_work(pvc, dv, self.adoption_enabled())
        result = Result()
        if work and c.ANN_PRE_POPULATED not in cm.annots(dv):
            if src_ns != request.namespace and await self.exchange.for_data_volume(dv):
                return Result()  # the DataVolume's update brings us back
            if pvc is None:
                created, result = await self._create_claim(dv, src_ns, src)
                if created is None:
                    return result
                pvc = created
            await self._after_claim(dv, pvc, src_ns, src)
        if cm.status(dv).get("phase") == c.DataVolumePhase.SUCCEEDED:
            await self._cleanup(dv, src_ns)
        await self._update_status(dv, pvc)
        return result

    async def _validate_claim(self, dv: Obj, pvc: Obj) -> bool:
        """A claim being deleted waits; one not ours is used only when it already holds the data."""
        name = cm.name_of(pvc)
        if cm.meta(pvc).get("deletionTimestamp"):
            await self.recorder.warning(dv, phases.ERR_MARKED_FOR_DELETION, phases.MSG_MARKED_FOR_DELETION.format(name))
            return False
        if claim.controlled_by(pvc, dv):
            return True
        if phases.requires_work(pvc, dv, self.adoption_enabled()) or claim.controller_of(pvc) is not None:
            await self.recorder.warning(dv, phases.ERR_RESOURCE_EXISTS, phases.MSG_RESOURCE_EXISTS.format(name))
            return False
        return True

    async def _create_claim(self, dv: Obj, src_ns: str, src: str) -> tuple[Obj | None, Result]:
        source = self.i["pvcs"].get(src, src_ns)
        if source is None:
            await self._write_status(dv, phase=cm.status(dv).get("phase", ""), reason=cl.CLONE_WITHOUT_SOURCE,
                                     message=cl.MSG_CLONE_WITHOUT_SOURCE.format("pvc", src),
                                     event=phases.Event("Warning", cl.CLONE_WITHOUT_SOURCE,
                                                        cl.MSG_CLONE_WITHOUT_SOURCE.format("pvc", src)))
            return None, Result()
        ctx = self.render_context()
        why = validate_clone(source, dv, ctx)
        if why:
            message = cl.MSG_CLONE_VALIDATION_FAILED.format(why)
            await self._write_status(dv, phase=cm.status(dv).get("phase", ""), reason=cl.CLONE_VALIDATION_FAILED,
                                     message=message,
                                     event=phases.Event("Warning", cl.CLONE_VALIDATION_FAILED, message))
            return None, Result()
        try:
            spec = render.render_pvc_spec(dv, ctx)
        except render.ClaimNotValid as e:
            await self._write_status(dv, phase=c.DataVolumePhase.UNSET, reason=c.EVENT_ERR_CLAIM_NOT_VALID,
                                     message=e.message, event=phases.Event("Warning", c.EVENT_ERR_CLAIM_NOT_VALID,
                                                                           e.event or e.message))
            return None, Result()
        if (dv.get("spec") or {}).get("storage") is not None and clone_size.needs_measure(spec, source):
            done = await self._detect_size(dv, spec, source, ctx)
            if not done:
                return None, await self._scheduled_if_busy(dv, source) or Result()
        busy = await self._scheduled_if_busy(dv, source)
        if busy is not None:
            return None, busy
        populate = self.use_populator(dv, spec)
        if populate and src_ns != cm.namespace_of(dv) and cl.FINALIZER_CROSS_NAMESPACE not in (
                cm.meta(dv).get("finalizers") or []):
            finalizers = [*(cm.meta(dv).get("finalizers") or []), cl.FINALIZER_CROSS_NAMESPACE]
            await self.client.patch(DATA_VOLUMES, cm.name_of(dv), {"metadata": {
                "resourceVersion": cm.meta(dv).get("resourceVersion"), "finalizers": finalizers}}, cm.namespace_of(dv))
            return None, Result()
        body = self._claim(dv, spec, ctx, src_ns, src, populate)
        try:
            created = await self.client.create(PERSISTENT_VOLUME_CLAIMS, body)
        except AlreadyExists:
            return None, Result()
        except APIStatusError as e:
            if "exceeded quota:" in e.message:
                await self._write_status(dv, phase=c.DataVolumePhase.PENDING, reason=c.EVENT_ERR_EXCEEDED_QUOTA,
                                         message=e.message,
                                         event=phases.Event("Warning", c.EVENT_ERR_EXCEEDED_QUOTA, e.message))
            raise
        log.info("created %s PVC %s/%s cloning %s/%s", "populated" if populate else "host-assisted",
                 cm.namespace_of(dv), cm.name_of(dv), src_ns, src)
        return created, Result()

    def _claim(self, dv: Obj, spec: Obj, ctx: render.RenderContext, src_ns: str, src: str, populate: bool) -> Obj:
        body = claim.new_claim(dv, spec, render.preallocation(dv, ctx.cdi_config))
        ann: dict[str, str] = body["metadata"]["annotations"]
        ann.pop(c.ANN_IMPORT_POD, None)
        # addCloneToken: only the admission's short token travels, and only for another namespace's source.
        ann.pop(c.ANN_CLONE_TOKEN, None)
        ann.pop(c.ANN_EXTENDED_CLONE_TOKEN, None)
        cross = src_ns != cm.namespace_of(dv)
        if cross:
            ann[c.ANN_CLONE_TOKEN] = cm.annots(dv).get(c.ANN_CLONE_TOKEN, "")
        if populate:
            if not gate_enabled(ctx.cdi_config, c.FeatureGate.HONOR_WAIT_FOR_FIRST_CONSUMER):
                ann[c.ANN_IMMEDIATE_BINDING] = ""
            if cross:
                ann[cl.ANN_DATA_SOURCE_NAMESPACE] = src_ns
            ref = {"apiGroup": c.ANN_PREFIX, "kind": cl.VOLUME_CLONE_SOURCE_KIND,
                   "name": volume_clone_source_name(dv)}
            body["spec"]["dataSourceRef"] = dict(ref)
            body["spec"]["dataSource"] = dict(ref)
        else:
            ann[cl.ANN_CLONE_REQUEST] = f"{src_ns}/{src}"
        return body

    async def _scheduled_if_busy(self, dv: Obj, source: Obj) -> Result | None:
        """isSourceReadyToClone: a pod writing to the source holds the clone in CloneScheduled."""
        users = cm.pods_using(self.i["pods"].list(cm.namespace_of(source)), cm.name_of(source), allow_read_only=True)
        for pod in users:
            await self.recorder.warning(dv, cl.CLONE_SOURCE_IN_USE, cl.MSG_CLONE_SOURCE_IN_USE.format(
                cm.namespace_of(pod), cm.name_of(pod), cm.name_of(source)))
        if not users:
            return None
        event = clone_status.phase_event(dv, c.DataVolumePhase.CLONE_SCHEDULED)
        assert event is not None
        await self._write_status(dv, phase=c.DataVolumePhase.CLONE_SCHEDULED, reason="", message="", event=event)
        return Result(requeue_after=SOURCE_IN_USE_WAIT)

    async def _detect_size(self, dv: Obj, spec: Obj, source: Obj, ctx: render.RenderContext) -> bool:
        """detectCloneSize: True once the spec's request is settled (filled in place)."""
        virtual: int | None = None
        if cm.volume_mode(source) == cm.FILESYSTEM and cm.content_type(source) == c.ContentType.KUBEVIRT and \
                cm.annots(source).get(c.ANN_CONTENT_TYPE) == c.ContentType.KUBEVIRT.value:
            virtual = clone_size.cached_size(source)
            if virtual is None:
                virtual = await self._measure(dv, source)
                if virtual is None:
                    return False
        overhead = render.filesystem_overhead(ctx.cdi_config, spec.get("storageClassName"), ctx.classes)
        decision = clone_size.decide(spec, source, virtual, overhead)
        if not decision.done:
            return False
        if decision.permissive and cm.annots(dv).get(c.ANN_PERMISSIVE_CLONE) != "true":
            dv["metadata"].setdefault("annotations", {})[c.ANN_PERMISSIVE_CLONE] = "true"
            await self.client.patch(DATA_VOLUMES, cm.name_of(dv), {"metadata": {"annotations": {
                c.ANN_PERMISSIVE_CLONE: "true"}}}, cm.namespace_of(dv))
        if decision.request is not None:
            spec.setdefault("resources", {}).setdefault("requests", {})["storage"] = str(decision.request)
        return True

    async def _measure(self, dv: Obj, source: Obj) -> int | None:
        """getSizeFromPod: run (or read) the size-detection pod; the size once known (then cached on the source)."""
        if not cm.is_populated(source, lambda n, ns: self.i["dvs"].get(n, ns)):
            await self.recorder.normal(dv, *cl.IMPORT_PVC_NOT_READY)
            return None
        name = clone_size.pod_name(source)
        pod = self.i["pods"].get(name, cm.namespace_of(source))
        if pod is None:
            try:
                await self.client.create(PODS, clone_size.detection_pod(source, dv, self.image, self.config()))
                await self.recorder.normal(dv, *cl.SIZE_DETECTION_POD_CREATED)
            except AlreadyExists:
                pass
            return None
        size, failure = clone_size.pod_result(pod)
        if size is None:
            if failure:
                await delete(self.client, PODS, pod)
                await self.recorder.warning(dv, failure, cl.MSG_SIZE_DETECTION_FAILED.format(failure))
            else:
                await self.recorder.normal(dv, *cl.SIZE_DETECTION_POD_NOT_READY)
            return None
        capacity = (cm.status(source).get("capacity") or {}).get("storage", "")
        await self.client.patch(PERSISTENT_VOLUME_CLAIMS, cm.name_of(source), {"metadata": {"annotations": {
            c.ANN_VIRTUAL_IMAGE_SIZE: str(size), c.ANN_SOURCE_CAPACITY: str(capacity)}}}, cm.namespace_of(source))
        await delete(self.client, PODS, pod)
        return size

    async def _after_claim(self, dv: Obj, pvc: Obj, src_ns: str, src: str) -> None:
        """The VolumeCloneSource (populated claims) or the host-assisted marks, and the claim's extended token."""
        if cm.is_clone_target(pvc):
            await self._ensure_volume_clone_source(dv, src_ns, src)
            clone_type = cm.annots(pvc).get(c.ANN_CLONE_TYPE)
            if clone_type and cm.annots(dv).get(c.ANN_CLONE_TYPE) != clone_type:
                await self._annotate(DATA_VOLUMES, dv, {c.ANN_CLONE_TYPE: clone_type})
        else:
            if cm.annots(dv).get(c.ANN_CLONE_TYPE) != c.CloneStrategy.COPY:
                await self._annotate(DATA_VOLUMES, dv, {c.ANN_CLONE_TYPE: c.CloneStrategy.COPY.value})
            if cm.annots(pvc).get(c.ANN_CLONE_TYPE) != c.CloneStrategy.COPY:
                reason, message = cl.NO_POPULATOR
                await self._annotate(PERSISTENT_VOLUME_CLAIMS, pvc, {
                    c.ANN_CLONE_TYPE: c.CloneStrategy.COPY.value, c.ANN_CLONE_FALLBACK_REASON: message})
                await self.recorder.warning(pvc, reason, message)
        if src_ns != cm.namespace_of(dv) and not cm.annots(pvc).get(c.ANN_EXTENDED_CLONE_TOKEN):
            await self.exchange.for_claim(dv, pvc)

    async def _ensure_volume_clone_source(self, dv: Obj, src_ns: str, src: str) -> None:
        """reconcileVolumeCloneSourceCR: the populator's source, in the source namespace."""
        name = volume_clone_source_name(dv)
        if self.i["vcs"].get(name, src_ns) is not None:
            return
        spec: Obj = {"source": {"kind": "PersistentVolumeClaim", "name": src}}
        dv_spec = dv.get("spec") or {}
        if dv_spec.get("preallocation") is not None:
            spec["preallocation"] = bool(dv_spec["preallocation"])
        if dv_spec.get("priorityClassName"):
            spec["priorityClassName"] = dv_spec["priorityClassName"]
        meta: Obj = {"name": name, "namespace": src_ns}
        if src_ns == cm.namespace_of(dv):
            meta["ownerReferences"] = [claim.owner_reference(dv)]
        else:
            meta["annotations"] = {cl.ANN_OWNED_BY_DATA_VOLUME: f"{cm.namespace_of(dv)}/{cm.name_of(dv)}"}
        try:
            await self.client.create(VOLUME_CLONE_SOURCES, {"apiVersion": VOLUME_CLONE_SOURCES.api_version,
                                                            "kind": cl.VOLUME_CLONE_SOURCE_KIND, "metadata": meta,
                                                            "spec": spec})
        except AlreadyExists:
            pass

    async def _cleanup(self, dv: Obj, src_ns: str) -> None:
        """Once succeeded or deleted: the VolumeCloneSource and the size-detection pod go, then our finalizer."""
        vcs = self.i["vcs"].get(volume_clone_source_name(dv), src_ns)
        if vcs is not None and not cm.meta(vcs).get("deletionTimestamp"):
            await delete(self.client, VOLUME_CLONE_SOURCES, vcs)
        for pod in self.i["pods"].list(src_ns):
            owner = cm.annots(pod).get(cl.ANN_OWNED_BY_DATA_VOLUME)
            ref = cm.controller_ref(pod)
            if cm.name_of(pod).startswith(cl.SIZE_DETECTION_PREFIX) and (
                    owner == f"{cm.namespace_of(dv)}/{cm.name_of(dv)}" or (ref or {}).get("uid") == cm.uid_of(dv)):
                await delete(self.client, PODS, pod)
        finalizers = cm.meta(dv).get("finalizers") or []
        if cl.FINALIZER_CROSS_NAMESPACE in finalizers:
            try:
                await self.client.patch(DATA_VOLUMES, cm.name_of(dv), {"metadata": {
                    "resourceVersion": cm.meta(dv).get("resourceVersion"),
                    "finalizers": [f for f in finalizers if f != cl.FINALIZER_CROSS_NAMESPACE]}},
                    cm.namespace_of(dv))
            except NotFound:
                pass

    async def _annotate(self, resource: Any, obj: Obj, annotations: dict[str, str]) -> None:
        updated = await self.client.patch(resource, cm.name_of(obj), {"metadata": {"annotations": annotations}},
                                          cm.namespace_of(obj))
        obj["metadata"] = updated["metadata"]

    # ---- status -------------------------------------------------------------------------------------------

    async def _update_status(self, dv: Obj, pvc: Obj | None) -> None:
        wffc = pvc is not None and self.wait_for_first_consumer(pvc)
        status, event = clone_status.next_status(dv, pvc, wffc=wffc, adoption_enabled=self.adoption_enabled())
        old_conditions = copy.deepcopy(cm.status(dv).get("conditions") or [])
        conditions.update_all(status, pvc)
        await self._emit(dv, status, old_conditions, event)

    async def _write_status(self, dv: Obj, *, phase: str, reason: str, message: str, event: phases.Event) -> None:
        """A phase set before the claim exists, with the reason on the conditions and its event."""
        status = copy.deepcopy(cm.status(dv))
        old_conditions = copy.deepcopy(status.get("conditions") or [])
        status["phase"] = phase or c.DataVolumePhase.PENDING
        if not status.get("progress"):
            status["progress"] = phases.PROGRESS_NONE
        conditions.update_all(status, None, reason, message)
        updated = await self._emit(dv, status, old_conditions, None)
        if updated is not None or event.type == "Warning":
            await self.recorder.event(updated or dv, event.type, event.reason, event.message)

    async def _emit(self, dv: Obj, status: Obj, old_conditions: list[Obj], event: phases.Event | None) -> Obj | None:
        old = cm.status(dv)
        if status == old:
            return None
        try:
            updated = await self.client.patch_status(DATA_VOLUMES, cm.name_of(dv), {"status": status},
                                                     cm.namespace_of(dv))
        except NotFound:
            return None
        if event is not None and old.get("phase", "") != status.get("phase", ""):
            await self.recorder.event(updated, event.type, event.reason, event.message)
        bound = conditions.find(status.get("conditions") or [], conditions.BOUND)
        old_bound = conditions.find(old_conditions, conditions.BOUND)
        if bound is not None and (old_bound is None or any(bound.get(k) != old_bound.get(k)
                                                           for k in ("status", "reason", "message"))):
            await self.recorder.normal(updated, bound.get("reason", ""), bound.get("message", ""))
        return updated
