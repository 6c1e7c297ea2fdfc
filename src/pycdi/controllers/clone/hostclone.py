"""The host-assisted clone controller (upstream's clone-controller plus the upload controller's clone target): a
claim annotated `k8s.io/CloneRequest: <ns>/<source>` is filled by two workers, a target beside the claim and a
source reading the source claim, which stream the data between them (`pycdi cloner`).

The workers' fates go onto the claim as for an import (`storage.pod.phase`, the Running condition annotations,
restarts, `storage.populator.progress` scraped from the source worker), the source worker's under
`storage.condition.source.running*`. A claim filled from another namespace needs the extended clone token the
DataVolume controller put on it, bound to the claim's UID. Unlike upstream, a clone that cannot be done (modes or
sizes that do not fit) or whose workers fail past the retry limit ends: the claim is marked failed with the reason.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ...api import clone as cl
from ...api import constants as c
from ...api.clonetoken import CloneTokens, InvalidCloneToken
from ...api.sizes import usable_space
from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists, NotFound
from ...kube.events import EventRecorder
from ...kube.resources import CDI_CONFIGS, DATA_VOLUMES, PERSISTENT_VOLUME_CLAIMS, PODS, SECRETS
from ..cdiconfig.featuregates import gate_enabled
from ..importpod import podspec as ip
from ..importpod.state import DEFAULT_RETRY_LIMIT, Outcome, observe
from ..runtime import Controller, Informer, Manager, Request, Result
from . import common as cm
from . import podspec
from .phases import delete

log = logging.getLogger(__name__)

NAME = "clone-controller"
CONFIG_NAME = "config"
SOURCE_WAIT = 5.0
RECHECK = 2.0
PROGRESS_INTERVAL = 1.0
SCRAPE_TIMEOUT = 2.0
SERIES = f"{cl.PROGRESS_METRIC}_total"
SOURCE_INDEX, UID_INDEX = "hostclone-source", "hostclone-uid"
_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{[^}]*ownerUID="(?P<owner>[^"]*)"[^}]*\}\s+(?P<value>\S+)')
Obj = dict[str, Any]


@dataclass(frozen=True)
class HostCloneOptions:
    pod: ip.PodOptions = field(default_factory=ip.PodOptions)
    retry_limit: int = DEFAULT_RETRY_LIMIT
    workers: int = 3


def clone_request(pvc: Obj) -> tuple[str, str] | None:
    value = cm.annots(pvc).get(cl.ANN_CLONE_REQUEST)
    if not value or "/" not in value:
        return None
    ns, _, name = value.partition("/")
    return (ns, name) if ns and name else None


def progress_from_metrics(text: str, owner_uid: str) -> float | None:
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group("name") == SERIES and match.group("owner") == owner_uid:
            try:
                return min(100.0, max(0.0, float(match.group("value"))))
            except ValueError:
                return None
    return None


def incompatibility(source: Obj, target: Obj, overheads: Mapping[str, float]) -> str:
    """ValidateCanCloneSourceAndTargetSpec: why the clone cannot be done ("" when it can)."""
    content = cm.content_type(target)
    if cm.content_type(source) != content:
        return (f"Source contentType ({cm.content_type(source)}) and target contentType ({content}) "
                f"do not match")
    if cm.volume_mode(source) != cm.volume_mode(target) and content != c.ContentType.KUBEVIRT:
        return (f"source volumeMode ({cm.volume_mode(source)}) and target volumeMode ({cm.volume_mode(target)}) "
                f"do not match, contentType ({content})")
    if c.ANN_PERMISSIVE_CLONE in cm.annots(target):
        return ""

    def usable(pvc: Obj) -> int:
        request = cm.request_bytes(pvc) or 0
        if cm.volume_mode(pvc) == cm.BLOCK:
            return request
        return usable_space(overheads.get(str(cm.spec(pvc).get("storageClassName") or ""), 0.0), request)

    if usable(source) > usable(target):
        return "target resources requests storage size is smaller than the source"
    return ""


class HostCloneReconciler:
    def __init__(self, client: KubeClient, pvcs: Informer, pods: Informer, configs: Informer, dvs: Informer,
                 tokens: CloneTokens | None, options: HostCloneOptions) -> None:
        self.client = client
        self.pvcs = pvcs
        self.pods = pods
        self.configs = configs
        self.dvs = dvs
        self.tokens = tokens
        self.options = options
        self.recorder = EventRecorder(client, NAME)

    def _config(self) -> Obj | None:
        return self.configs.get(CONFIG_NAME)

    def _overheads(self) -> dict[str, float]:
        overhead = cm.status(self._config()).get("filesystemOverhead") or {}
        out: dict[str, float] = {}
        for name, value in (overhead.get("storageClass") or {}).items():
            try:
                out[str(name)] = float(value)
            except ValueError:
                pass
        return out

    def _should_handle(self, pvc: Obj) -> bool:
        """Bound; or to be bound by the workers (immediate binding asked, or WaitForFirstConsumer not honoured)."""
        return cm.is_bound(pvc) or c.ANN_IMMEDIATE_BINDING in cm.annots(pvc) or \
            not gate_enabled(self._config(), c.FeatureGate.HONOR_WAIT_FOR_FIRST_CONSUMER)

    # ---- reconcile ----------------------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        pvc = self.pvcs.get(request.name, request.namespace)
        if pvc is None:
            return Result()
        source_ref = clone_request(pvc)
        if source_ref is None:
            return Result()
        source_ns, source_name = source_ref
        target_pod = self.pods.get(podspec.target_pod_name(pvc), request.namespace)
        source_pod = self.pods.get(cm.source_pod_name(pvc), source_ns)
        ann = cm.annots(pvc)
        if cm.meta(pvc).get("deletionTimestamp") or ann.get(c.ANN_IMPORT_FATAL_ERROR) == "true" or (
                ann.get(c.ANN_POD_PHASE) == "Succeeded" and ann.get(c.ANN_POD_RETAIN_AFTER_COMPLETION) != "true"):
            await self._cleanup(pvc, source_ns, target_pod, source_pod)
            return Result()
        if ann.get(c.ANN_POD_PHASE) == "Succeeded" or not self._should_handle(pvc):
            return Result()
        if source_ns != request.namespace and not await self._authorized(pvc, source_ns, source_name):
            return Result()
        source = self.pvcs.get(source_name, source_ns)
        if source is None:
            await self.recorder.warning(pvc, cl.CLONE_WITHOUT_SOURCE,
                                        cl.MSG_CLONE_WITHOUT_SOURCE.format("pvc", source_name))
            return Result(requeue_after=SOURCE_WAIT)
        if target_pod is None and source_pod is None:
            why = incompatibility(source, pvc, self._overheads())
            if why:
                await self.recorder.warning(pvc, cl.ERR_INCOMPATIBLE_PVC, why)
                await self._fail(pvc, why, cl.ERR_INCOMPATIBLE_PVC)
                return Result()
            if not await self._source_ready(pvc, source):
                return Result(requeue_after=SOURCE_WAIT)
            await self._ensure_secrets(pvc, source_ns)
            await self._create(PODS, podspec.target_pod(pvc, self._config(), self.options.pod))
            await self._patch(pvc, {c.ANN_CLONE_SOURCE_POD: cm.source_pod_name(pvc)})
            return Result(requeue_after=RECHECK)
        return await self._update_from_pods(pvc, source, target_pod, source_pod)

    async def _authorized(self, pvc: Obj, source_ns: str, source: str) -> bool:
        """validateCloneTokenPVC: the extended token on the claim names this source and target and its UID."""
        token = cm.annots(pvc).get(c.ANN_EXTENDED_CLONE_TOKEN)
        if not token:
            return False  # the DataVolume controller adds it; its update brings us back
        if self.tokens is None:
            await self.recorder.warning(pvc, cl.ERR_UNABLE_TO_CLONE, "no signing key configured to check clone tokens")
            return False
        try:
            self.tokens.check(token, source_ns=source_ns, source=source, target_ns=cm.namespace_of(pvc),
                              target=cm.name_of(pvc), uid=cm.uid_of(pvc), extended=True)
        except InvalidCloneToken as e:
            await self.recorder.warning(pvc, cl.ERR_UNABLE_TO_CLONE, f"clone token is not valid: {e}")
            return False
        return True

    async def _source_ready(self, pvc: Obj, source: Obj) -> bool:
        if not cm.is_bound(source):
            return False
        users = cm.pods_using(self.pods.list(cm.namespace_of(source)), cm.name_of(source), allow_read_only=True)
        events = [pvc]
        origin = cm.event_source(pvc)
        if origin is not None:
            target = self.pvcs.get(origin[2], origin[1])
            if target is not None:
                events.append(target)
        for pod in users:
            for obj in events:
                await self.recorder.warning(obj, cl.CLONE_SOURCE_IN_USE, cl.MSG_CLONE_SOURCE_IN_USE.format(
                    cm.namespace_of(pod), cm.name_of(pod), cm.name_of(source)))
        return not users and cm.is_populated(source, lambda n, ns: self.dvs.get(n, ns))

    async def _update_from_pods(self, pvc: Obj, source: Obj, target_pod: Obj | None,
                                source_pod: Obj | None) -> Result:
        before = dict(cm.annots(pvc))
        ann = dict(before)
        outcome = Outcome.PENDING
        if target_pod is not None:
            obs = observe(ann, target_pod, self.options.retry_limit)
            ann, outcome = obs.annotations, obs.outcome
        if source_pod is not None and outcome not in (Outcome.FATAL, Outcome.SUCCEEDED):
            src = observe({}, source_pod, self.options.retry_limit)
            ann[c.ANN_SOURCE_RUNNING_CONDITION] = src.annotations.get(c.ANN_RUNNING_CONDITION, "false")
            ann[c.ANN_SOURCE_RUNNING_CONDITION_MESSAGE] = src.annotations.get(c.ANN_RUNNING_CONDITION_MESSAGE, "")
            ann[c.ANN_SOURCE_RUNNING_CONDITION_REASON] = src.annotations.get(c.ANN_RUNNING_CONDITION_REASON, "")
            if src.outcome == Outcome.FATAL:
                ann[c.ANN_IMPORT_FATAL_ERROR] = "true"
                ann[c.ANN_POD_PHASE] = "Failed"
                ann[c.ANN_RUNNING_CONDITION] = "false"
                ann[c.ANN_RUNNING_CONDITION_MESSAGE] = src.message
                ann[c.ANN_RUNNING_CONDITION_REASON] = "Error"
                outcome = Outcome.FATAL
            elif src.outcome == Outcome.RUNNING and outcome == Outcome.RUNNING:
                percent = await self._scrape(source_pod)
                if percent is not None:
                    ann[c.ANN_POPULATOR_PROGRESS] = f"{percent:.2f}%"
        if outcome == Outcome.SUCCEEDED:
            ann[cl.ANN_CLONE_OF] = "true"
            for key in (c.ANN_SOURCE_RUNNING_CONDITION, c.ANN_SOURCE_RUNNING_CONDITION_MESSAGE,
                        c.ANN_SOURCE_RUNNING_CONDITION_REASON):
                ann.pop(key, None)
        if target_pod is None and source_pod is not None:
            outcome = Outcome.PENDING  # the target's pod is gone (deleted): it is made again below
        changes: dict[str, str | None] = {k: v for k, v in ann.items() if before.get(k) != v}
        changes.update({k: None for k in before if k not in ann})
        if changes:
            pvc = await self._patch(pvc, changes)
        if outcome == Outcome.SUCCEEDED:
            if before.get(c.ANN_POD_PHASE) != "Succeeded":
                await self.recorder.normal(pvc, cl.CLONE_SUCCEEDED, cl.CLONE_COMPLETE)
            return Result()
        if outcome == Outcome.FATAL:
            await self.recorder.warning(pvc, cl.CLONE_FAILED, ann.get(c.ANN_RUNNING_CONDITION_MESSAGE, ""))
            return Result()
        if target_pod is None:
            await self._create(PODS, podspec.target_pod(pvc, self._config(), self.options.pod))
            return Result(requeue_after=RECHECK)
        ip_address = cm.status(target_pod).get("podIP")
        if source_pod is None and ip_address and cm.status(target_pod).get("phase") == "Running":
            await self._create(PODS, podspec.source_pod(pvc, source, str(ip_address), self._config(),
                                                        self.options.pod))
        return Result(requeue_after=PROGRESS_INTERVAL if outcome == Outcome.RUNNING else RECHECK)

    # ---- helpers ------------------------------------------------------------------------------------------

    async def _fail(self, pvc: Obj, message: str, reason: str) -> None:
        await self._patch(pvc, {c.ANN_IMPORT_FATAL_ERROR: "true", c.ANN_POD_PHASE: "Failed",
                                c.ANN_RUNNING_CONDITION: "false", c.ANN_RUNNING_CONDITION_MESSAGE: message,
                                c.ANN_RUNNING_CONDITION_REASON: reason})

    async def _patch(self, pvc: Obj, annotations: Mapping[str, str | None]) -> Obj:
        return await self.client.patch(PERSISTENT_VOLUME_CLAIMS, cm.name_of(pvc),
                                       {"metadata": {"annotations": dict(annotations)}}, cm.namespace_of(pvc))

    async def _create(self, resource: Any, body: Obj) -> None:
        try:
            await self.client.create(resource, body)
            log.info("created %s %s/%s", resource.kind, body["metadata"]["namespace"], body["metadata"]["name"])
        except AlreadyExists:
            pass

    async def _ensure_secrets(self, pvc: Obj, source_ns: str) -> None:
        """One shared secret and certificate, in the claim's namespace and (the same values, without the key) in
        the source's; what an older Secret lacks (the certificate) is added before the workers start."""
        name = podspec.secret_name(pvc)
        namespaces = list(dict.fromkeys([cm.namespace_of(pvc), source_ns]))
        existing: dict[str, Obj | None] = {}
        current: dict[str, dict[str, str]] = {}
        for namespace in namespaces:
            try:
                existing[namespace] = await self.client.get(SECRETS, name, namespace)
            except NotFound:
                existing[namespace] = None
            current[namespace] = _decoded(existing[namespace])
        # The claim's namespace's values win (it holds the key too); a secret only the source's has is kept.
        found = {k: v for namespace in reversed(namespaces) for k, v in current[namespace].items()
                 if k != podspec.TLS_KEY_KEY or namespace == namespaces[0]}
        wanted = podspec.complete_clone_data(found)
        for namespace in namespaces:
            body = podspec.clone_secret(pvc, namespace, wanted)
            found_here = existing[namespace]
            if found_here is None:
                await self._create(SECRETS, body)
            elif current[namespace] != body["stringData"]:
                body["metadata"]["resourceVersion"] = cm.meta(found_here).get("resourceVersion")
                await self.client.update(SECRETS, body)

    async def _scrape(self, pod: Obj) -> float | None:
        address = str(cm.status(pod).get("podIP") or "")
        if not address:
            return None
        host = f"[{address}]" if ":" in address else address
        url = f"http://{host}:{self.options.pod.metrics_port}/metrics"
        owner = next((e.get("value") for e in (cm.spec(pod).get("containers") or [{}])[0].get("env") or []
                      if e.get("name") == "OWNER_UID"), "")
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    url, timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)) as response:
                if response.status != 200:
                    return None
                return progress_from_metrics(await response.text(), str(owner))
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None

    async def _cleanup(self, pvc: Obj, source_ns: str, target_pod: Obj | None, source_pod: Obj | None) -> None:
        for pod in (source_pod, target_pod):
            if pod is not None and not cm.meta(pod).get("deletionTimestamp"):
                await delete(self.client, PODS, pod)
        if target_pod is None and source_pod is None:
            return  # cleaned up already (or never started)
        # The workers are done with their shared secret (the claim's namespace's would go with the claim anyway).
        for namespace in dict.fromkeys([cm.namespace_of(pvc), source_ns]):
            try:
                await self.client.delete(SECRETS, podspec.secret_name(pvc), namespace)
            except NotFound:
                pass


def _decoded(secret: Obj | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in ((secret or {}).get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value).decode()
        except (ValueError, TypeError):
            pass  # unreadable: made anew
    return out


def add_to_manager(manager: Manager, tokens: CloneTokens | None, options: HostCloneOptions) -> Controller:
    pvcs = manager.informer(PERSISTENT_VOLUME_CLAIMS)
    pods = manager.informer(PODS)
    configs = manager.informer(CDI_CONFIGS)
    dvs = manager.informer(DATA_VOLUMES)
    reconciler = HostCloneReconciler(manager.client, pvcs, pods, configs, dvs, tokens, options)
    controller = Controller(NAME, reconciler, workers=options.workers)
    pvcs.add_index(SOURCE_INDEX, lambda o: [f"{ref[0]}/{ref[1]}"] if (ref := clone_request(o)) else [])
    pvcs.add_index(UID_INDEX, lambda o: [cm.uid_of(o)])

    def claim_changed(pvc: Obj) -> list[Request]:
        out = [Request(cm.name_of(pvc), cm.namespace_of(pvc))] if clone_request(pvc) else []
        # A source claim: the clones waiting for it.
        out += [Request(cm.name_of(t), cm.namespace_of(t))
                for t in pvcs.by_index(SOURCE_INDEX, f"{cm.namespace_of(pvc)}/{cm.name_of(pvc)}")]
        return out

    def pod_changed(pod: Obj) -> list[Request]:
        out = []
        ref = cm.controller_ref(pod)
        if ref is not None and ref.get("kind") == "PersistentVolumeClaim":
            out.append(Request(str(ref.get("name")), cm.namespace_of(pod)))
        uid = cm.labels(pod).get(cl.LABEL_OWNED_BY_UID)
        if uid:
            out += [Request(cm.name_of(p), cm.namespace_of(p)) for p in pvcs.by_index(UID_INDEX, uid)]
        for claim, _ in cm.claim_names(pod):  # a user of a source claim came or went
            out += [Request(cm.name_of(t), cm.namespace_of(t))
                    for t in pvcs.by_index(SOURCE_INDEX, f"{cm.namespace_of(pod)}/{claim}")]
        return out

    controller.watch(pvcs, claim_changed)
    controller.watch(pods, pod_changed)
    manager.add(controller)
    return controller

