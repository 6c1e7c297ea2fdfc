"""The import controller: a PVC with import annotations gets an importer pod; the pod's fate goes back onto the PVC."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ...api import constants as c
from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists, Conflict, NotFound
from ...kube.events import EventRecorder
from ...kube.resources import CDI_CONFIGS, PERSISTENT_VOLUME_CLAIMS, PODS
from ..cdiconfig.featuregates import gate_enabled
from ..runtime import Controller, Informer, Manager, Request, Result
from . import podspec
from .progress import format_progress, scrape
from .state import ANN_RETRY_COUNT, DEFAULT_RETRY_LIMIT, Outcome, observe

log = logging.getLogger(__name__)

NAME = "import-controller"
CONFIG_NAME = "config"
EVENT_IMPORT_FAILED = "ErrImportFailed"
EVENT_IMPORT_SUCCEEDED = "ImportSucceeded"
EVENT_TARGET_IN_USE = "ImportTargetInUse"
#: While the importer runs its progress is read this often (upstream's DV controller: on every reconcile).
PROGRESS_INTERVAL = 1.0
#: Upstream re-checks an unfinished import every 2 s whatever happens.
RECHECK_INTERVAL = 2.0
IN_USE_RECHECK = 5.0
_BOUND_SCRATCH_KEYS = (c.ANN_BOUND_CONDITION, c.ANN_BOUND_CONDITION_MESSAGE, c.ANN_BOUND_CONDITION_REASON)


@dataclass(frozen=True)
class ImportOptions:
    pod: podspec.PodOptions = field(default_factory=podspec.PodOptions)
    #: Failed runs of one importer pod before the import is failed for good (CDIConfig `spec.importRetryLimit`,
    #: a pycdi field, overrides it).
    retry_limit: int = DEFAULT_RETRY_LIMIT
    workers: int = 3


def is_import_pvc(pvc: dict[str, Any]) -> bool:
    ann = (pvc.get("metadata") or {}).get("annotations") or {}
    return c.ANN_ENDPOINT in ann or c.ANN_SOURCE in ann


def controlled_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = owner["metadata"].get("uid")
    return any(ref.get("controller") and ref.get("uid") == uid
               for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def should_handle(pvc: dict[str, Any], config: dict[str, Any] | None = None) -> bool:
    """Bound; or asked to bind now, or WaitForFirstConsumer not honoured (the HonorWaitForFirstConsumer gate off):
    the pod is then the claim's first consumer and makes it bind (upstream's shouldHandlePvc)."""
    ann = pvc["metadata"].get("annotations") or {}
    return (pvc.get("status") or {}).get("phase") == "Bound" or c.ANN_IMMEDIATE_BINDING in ann or \
        not gate_enabled(config, c.FeatureGate.HONOR_WAIT_FOR_FIRST_CONSUMER)


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class ImportReconciler:
    def __init__(self, client: KubeClient, pvcs: Informer, pods: Informer, configs: Informer,
                 options: ImportOptions) -> None:
        self.client = client
        self.pvcs = pvcs
        self.pods = pods
        self.configs = configs
        self.options = options
        self.recorder = EventRecorder(client, NAME)
        # The PVCs as we last wrote them: the cache may not have caught up with our own writes yet.
        self._written: dict[tuple[str, str], dict[str, Any]] = {}

    # ---- reading ------------------------------------------------------------------------------------

    def _pvc(self, request: Request) -> dict[str, Any] | None:
        key = (request.namespace, request.name)
        cached = self.pvcs.get(request.name, request.namespace)
        written = self._written.get(key)
        if cached is None:
            self._written.pop(key, None)
            return None
        if written is not None and written["metadata"].get("uid") == cached["metadata"].get("uid") \
                and _rv(written) > _rv(cached):
            return written
        self._written.pop(key, None)
        return cached

    def _config(self) -> dict[str, Any] | None:
        return self.configs.get(CONFIG_NAME)

    def retry_limit(self) -> int:
        wanted = ((self._config() or {}).get("spec") or {}).get("importRetryLimit")
        return wanted if isinstance(wanted, int) and wanted > 0 else self.options.retry_limit

    # ---- reconcile ----------------------------------------------------------------------------------

    # ---- what the upload controller does differently ------------------------------------------------

    #: The claim annotation naming the worker pod, the pod's kind in the log, the event when the claim is in use.
    POD_ANNOTATION = c.ANN_IMPORT_POD
    WORKER = "importer"
    IN_USE_EVENT = EVENT_TARGET_IN_USE

    def _is_mine(self, pvc: dict[str, Any]) -> bool:
        return is_import_pvc(pvc)

    def _pod_name(self, pvc: dict[str, Any]) -> str:
        return podspec.import_pod_name(pvc)

    def _should_handle(self, pvc: dict[str, Any]) -> bool:
        return should_handle(pvc, self._config())

    def _needs_scratch(self, pvc: dict[str, Any]) -> bool:
        return podspec.requires_scratch(pvc)

    async def _new_pod(self, pvc: dict[str, Any], scratch: str | None) -> dict[str, Any]:
        """Create the worker pod (AlreadyExists: the previous one is still terminating)."""
        return await self.client.create(PODS, podspec.importer_pod(pvc, self._config(), self.options.pod,
                                                                   scratch=scratch))

    # ---- reconcile ----------------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        pvc = self._pvc(request)
        if pvc is None or not self._is_mine(pvc):
            return Result()
        ann: dict[str, str] = pvc["metadata"].get("annotations") or {}
        pod = self.pods.get(self._pod_name(pvc), request.namespace)
        if pod is not None and not controlled_by(pod, pvc):
            log.warning("pod %s/%s is not controlled by PVC %s; leaving it alone", request.namespace,
                        pod["metadata"]["name"], request.name)
            return Result()
        if pvc["metadata"].get("deletionTimestamp"):
            # The claim is going: stop the worker now (its pvc-protection finalizer waits for it).
            if pod is not None:
                await self._delete_pod(pod)
            return Result()
        if ann.get(c.ANN_POD_PHASE) == "Succeeded":
            if pod is not None and ann.get(c.ANN_POD_RETAIN_AFTER_COMPLETION) != "true":
                await self._delete_pod(pod)
            await self._delete_scratch(pvc)
            return Result()
        if ann.get(c.ANN_IMPORT_FATAL_ERROR) == "true":
            if pod is not None:
                await self._delete_pod(pod)
            return Result()
        if not self._should_handle(pvc):
            return Result()
        if pod is None:
            return await self._create_pod(request)
        if pod["metadata"].get("deletionTimestamp"):
            return Result(requeue_after=RECHECK_INTERVAL)  # its deletion event brings us back sooner
        return await self._update_from_pod(pvc, pod)

    async def _create_pod(self, request: Request) -> Result:
        # Read past the cache: a pod is made only for a claim that is really unfinished.
        try:
            pvc = await self.client.get(PERSISTENT_VOLUME_CLAIMS, request.name, request.namespace)
        except NotFound:
            return Result()
        ann: dict[str, str] = pvc["metadata"].get("annotations") or {}
        if pvc["metadata"].get("deletionTimestamp") or ann.get(c.ANN_POD_PHASE) == "Succeeded" or \
                ann.get(c.ANN_IMPORT_FATAL_ERROR) == "true" or not self._is_mine(pvc) or \
                not self._should_handle(pvc):
            return Result()
        users = self._pods_using(pvc)
        if users:
            for user in users:
                await self.recorder.warning(pvc, self.IN_USE_EVENT, f"pod {request.namespace}/"
                                            f"{user['metadata']['name']} using PersistentVolumeClaim {request.name}")
            return Result(requeue_after=IN_USE_RECHECK)
        name = self._pod_name(pvc)
        labels = pvc["metadata"].get("labels") or {}
        if ann.get(self.POD_ANNOTATION) != name or labels.get("app") != podspec.APP_LABELS["app"]:
            pvc = await self._patch(pvc, {self.POD_ANNOTATION: name}, podspec.APP_LABELS)
        scratch = podspec.scratch_name(pvc) if self._needs_scratch(pvc) else None
        try:
            pod = await self._new_pod(pvc, scratch)
        except AlreadyExists:
            return Result(requeue_after=RECHECK_INTERVAL)  # the previous pod is still terminating
        log.info("created %s pod %s/%s%s", self.WORKER, request.namespace, name,
                 " with scratch space" if scratch else "")
        if scratch:
            updates = await self._ensure_scratch(pvc, pod)
            if updates:
                await self._patch(pvc, updates)
        return Result(requeue_after=RECHECK_INTERVAL)

    async def _update_from_pod(self, pvc: dict[str, Any], pod: dict[str, Any]) -> Result:
        before: dict[str, str] = dict(pvc["metadata"].get("annotations") or {})
        obs = observe(before, pod, self.retry_limit())
        ann = obs.annotations
        ann[c.ANN_IMPORT_POD] = pod["metadata"]["name"]
        status = pod.get("status") or {}
        if obs.outcome == Outcome.RUNNING and status.get("podIP"):
            percent = await self._scrape(pvc, pod)
            if percent is not None:
                ann[c.ANN_POPULATOR_PROGRESS] = format_progress(percent)
        if status.get("phase", "Pending") == "Pending" and _has_scratch_volume(pod):
            ann.update(await self._ensure_scratch(pvc, pod))
        elif ann.get(c.ANN_BOUND_CONDITION_REASON) == c.REASON_CREATING_SCRATCH:
            for key in _BOUND_SCRATCH_KEYS:
                ann.pop(key, None)
        changes: dict[str, str | None] = {k: v for k, v in ann.items() if before.get(k) != v}
        changes.update({k: None for k in before if k not in ann})
        labels = pvc["metadata"].get("labels") or {}
        if changes or labels.get("app") != podspec.APP_LABELS["app"]:
            pvc = await self._patch(pvc, changes, podspec.APP_LABELS)
        await self._record(pvc, before, obs.outcome, obs.message)
        return await self._act(pvc, pod, obs.outcome)

    async def _act(self, pvc: dict[str, Any], pod: dict[str, Any], outcome: Outcome) -> Result:
        ann = pvc["metadata"].get("annotations") or {}
        if outcome == Outcome.FATAL:
            await self._delete_pod(pod)
            return Result()
        if outcome == Outcome.SCRATCH:
            log.info("importer pod %s/%s needs scratch space: recreating it with scratch", pod["metadata"]["namespace"],
                     pod["metadata"]["name"])
            await self._delete_pod(pod)
            return Result(requeue_after=RECHECK_INTERVAL)
        if outcome == Outcome.SUCCEEDED:
            if ann.get(c.ANN_POD_RETAIN_AFTER_COMPLETION) != "true":
                await self._delete_pod(pod)
            await self._delete_scratch(pvc)
            return Result()
        return Result(requeue_after=PROGRESS_INTERVAL if outcome == Outcome.RUNNING else RECHECK_INTERVAL)

    async def _record(self, pvc: dict[str, Any], before: dict[str, str], outcome: Outcome, message: str) -> None:
        """Events on the transitions only (the cache may show the same pod state several times)."""
        ann = pvc["metadata"].get("annotations") or {}
        if outcome == Outcome.SUCCEEDED and before.get(c.ANN_POD_PHASE) != "Succeeded":
            await self.recorder.normal(pvc, EVENT_IMPORT_SUCCEEDED, "Import Successful")
        elif outcome == Outcome.FATAL and before.get(c.ANN_IMPORT_FATAL_ERROR) != "true":
            await self.recorder.warning(pvc, EVENT_IMPORT_FAILED, message)
        elif outcome == Outcome.RETRYING and ann.get(ANN_RETRY_COUNT) != before.get(ANN_RETRY_COUNT):
            await self.recorder.warning(pvc, EVENT_IMPORT_FAILED, message)

    # ---- helpers ------------------------------------------------------------------------------------

    async def _patch(self, pvc: dict[str, Any], annotations: Mapping[str, str | None],
                     labels: dict[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"annotations": dict(annotations)}
        if labels:
            meta["labels"] = labels
        patched = await self.client.patch(PERSISTENT_VOLUME_CLAIMS, pvc["metadata"]["name"], {"metadata": meta},
                                          pvc["metadata"]["namespace"])
        self._written[(pvc["metadata"]["namespace"], pvc["metadata"]["name"])] = patched
        return patched

    def _pods_using(self, pvc: dict[str, Any]) -> list[dict[str, Any]]:
        """GetPodsUsingPVCs: other unfinished pods of the namespace mounting the claim."""
        name, namespace = pvc["metadata"]["name"], pvc["metadata"]["namespace"]
        own = self._pod_name(pvc)
        users = []
        for pod in self.pods.list(namespace):
            if pod["metadata"]["name"] == own or (pod.get("status") or {}).get("phase") in ("Succeeded",
                                                                                              "Failed"):
                continue
            claims = {(v.get("persistentVolumeClaim") or {}).get("claimName")
                      for v in (pod.get("spec") or {}).get("volumes") or []}
            if name in claims:
                users.append(pod)
        return users

    async def _scrape(self, pvc: dict[str, Any], pod: dict[str, Any]) -> float | None:
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        env = {e.get("name"): e.get("value") for e in container.get("env") or []}
        port = next((p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == "metrics"),
                    None)
        port = port or int(env.get("PYCDI_METRICS_PORT") or self.options.pod.metrics_port)
        owner = str(env.get("OWNER_UID") or podspec.owner_uid(pvc))
        async with aiohttp.ClientSession() as session:
            return await scrape(session, str(pod["status"]["podIP"]), int(port), owner)

    async def _ensure_scratch(self, pvc: dict[str, Any], pod: dict[str, Any]) -> dict[str, str]:
        """Create the pod's scratch claim if missing; returns the Bound condition annotations to show meanwhile."""
        namespace, name = pvc["metadata"]["namespace"], podspec.scratch_name(pvc)
        try:
            existing = await self.client.get(PERSISTENT_VOLUME_CLAIMS, name, namespace)
        except NotFound:
            existing = None
        if existing is not None:
            if existing["metadata"].get("deletionTimestamp") or not controlled_by(existing, pod):
                # Left by an earlier pod (its GC is under way): start over once it is gone.
                if not existing["metadata"].get("deletionTimestamp"):
                    await self._delete(PERSISTENT_VOLUME_CLAIMS, existing)
                await self._delete_pod(pod)
            return {}
        try:
            await self.client.create(PERSISTENT_VOLUME_CLAIMS, podspec.scratch_pvc(pvc, pod, self._config()))
            log.info("created scratch PVC %s/%s", namespace, name)
        except AlreadyExists:
            return {}
        return {c.ANN_BOUND_CONDITION: "false", c.ANN_BOUND_CONDITION_MESSAGE: "Creating scratch space",
                c.ANN_BOUND_CONDITION_REASON: c.REASON_CREATING_SCRATCH}

    async def _delete_scratch(self, pvc: dict[str, Any]) -> None:
        name = podspec.scratch_name(pvc)
        scratch = self.pvcs.get(name, pvc["metadata"]["namespace"])
        if scratch is not None and not scratch["metadata"].get("deletionTimestamp") and \
                (scratch["metadata"].get("labels") or {}).get("app") == podspec.APP_LABELS["app"] and \
                not is_import_pvc(scratch):
            await self._delete(PERSISTENT_VOLUME_CLAIMS, scratch)

    async def _delete_pod(self, pod: dict[str, Any]) -> None:
        if not pod["metadata"].get("deletionTimestamp"):
            await self._delete(PODS, pod)

    async def _delete(self, resource: Any, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            await self.client.delete(resource, meta["name"], meta["namespace"], uid=meta.get("uid"),
                                     propagation_policy="Background")
        except NotFound:
            pass
        except Conflict:
            pass  # the uid precondition failed: the name is already another object's


def _has_scratch_volume(pod: dict[str, Any]) -> bool:
    return any(v.get("name") == podspec.SCRATCH_VOLUME_NAME for v in (pod.get("spec") or {}).get("volumes") or [])


def add_to_manager(manager: Manager, options: ImportOptions | None = None) -> Controller:
    """Watches PVCs, and pods to the PVC that controls them."""
    options = options or ImportOptions()
    pvcs = manager.informer(PERSISTENT_VOLUME_CLAIMS)
    pods = manager.informer(PODS)
    configs = manager.informer(CDI_CONFIGS)
    controller = Controller(NAME, ImportReconciler(manager.client, pvcs, pods, configs, options),
                            workers=options.workers)

    def owning_pvc(pod: dict[str, Any]) -> list[Request]:
        meta = pod.get("metadata") or {}
        return [Request(str(ref.get("name")), str(meta.get("namespace") or ""))
                for ref in meta.get("ownerReferences") or []
                if ref.get("controller") and ref.get("kind") == "PersistentVolumeClaim"]

    controller.watch(pvcs, lambda pvc: [Request(pvc["metadata"]["name"], pvc["metadata"].get("namespace") or "")]
                     if is_import_pvc(pvc) else [])
    controller.watch(pods, owning_pvc)

    def unbound_imports(_config: dict[str, Any]) -> list[Request]:
        """CDIConfig changed: the HonorWaitForFirstConsumer gate may now let waiting claims start."""
        return [Request(p["metadata"]["name"], p["metadata"].get("namespace") or "") for p in pvcs.list()
                if is_import_pvc(p) and (p.get("status") or {}).get("phase") != "Bound"]

    controller.watch(configs, unbound_imports)
    manager.add(controller)
    return controller
