"""The upload controller (upstream's upload-controller): a PVC annotated `storage.upload.target` gets the upload
worker pod `cdi-upload-<pvc>`; the pod's state goes back onto the PVC (`storage.pod.phase`, `storage.pod.ready`...).

It is the import controller's sibling: the same claim/pod/scratch mechanics (inherited from ImportReconciler),
another pod, a TLS Secret per pod, and readiness instead of progress.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from ...api import constants as c
from ...api import upload as u
from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists, NotFound
from ...kube.events import EventRecorder
from ...kube.resources import CDI_CONFIGS, PERSISTENT_VOLUME_CLAIMS, PODS, SECRETS
from ..importpod import ImportOptions, ImportReconciler
from ..importpod import podspec as ip
from ..importpod.controller import RECHECK_INTERVAL, controlled_by, should_handle
from ..importpod.state import DEFAULT_RETRY_LIMIT, Outcome, observe
from ..runtime import Controller, Informer, Manager, Request, Result
from . import podspec
from .certs import UploadCertificates
from .readiness import probe_context, server_answers

log = logging.getLogger(__name__)

NAME = "upload-controller"
EVENT_UPLOAD_SUCCEEDED = "UploadSucceeded"
EVENT_UPLOAD_FAILED = "UploadFailed"
EVENT_TARGET_IN_USE = "UploadTargetInUse"
IN_USE_RECHECK = 5.0
#: A started server not answering yet is probed again this soon.
READY_RECHECK = 0.5


@dataclass(frozen=True)
class UploadOptions:
    pod: ip.PodOptions = field(default_factory=ip.PodOptions)
    #: Failed runs of one upload pod (async processing errors, crashes) before the upload fails for good.
    retry_limit: int = DEFAULT_RETRY_LIMIT
    #: Where the upload CAs and the proxy's client certificate are kept.
    cdi_namespace: str = u.DEFAULT_CDI_NAMESPACE
    workers: int = 3


def pod_ready(pod: dict[str, Any]) -> bool:
    """isPodReady: every container reports ready."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and all(s.get("ready") for s in statuses)


class UploadReconciler(ImportReconciler):
    def __init__(self, client: KubeClient, pvcs: Informer, pods: Informer, configs: Informer,
                 options: UploadOptions) -> None:
        super().__init__(client, pvcs, pods, configs, ImportOptions(pod=options.pod, retry_limit=options.retry_limit,
                                                                    workers=options.workers))
        self.upload_options = options
        self.certs = UploadCertificates(client, options.cdi_namespace)
        self.recorder = EventRecorder(client, NAME)
        self._probe_context: ssl.SSLContext | None = None

    async def reconcile(self, request: Request) -> Result:
        pvc = self._pvc(request)
        if pvc is None or not podspec.is_upload_pvc(pvc):
            return Result()
        ann: dict[str, str] = pvc["metadata"].get("annotations") or {}
        pod = self.pods.get(podspec.upload_pod_name(pvc), request.namespace)
        if pod is not None and not controlled_by(pod, pvc):
            log.warning("pod %s/%s is not controlled by PVC %s; leaving it alone", request.namespace,
                        pod["metadata"]["name"], request.name)
            return Result()
        if pvc["metadata"].get("deletionTimestamp"):
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
        if not should_handle(pvc):
            return Result()
        if pod is None:
            return await self._create_pod(request)
        if pod["metadata"].get("deletionTimestamp"):
            return Result(requeue_after=RECHECK_INTERVAL)
        return await self._update_from_pod(pvc, pod)

    async def _create_pod(self, request: Request) -> Result:
        try:
            pvc = await self.client.get(PERSISTENT_VOLUME_CLAIMS, request.name, request.namespace)
        except NotFound:
            return Result()
        ann: dict[str, str] = pvc["metadata"].get("annotations") or {}
        if pvc["metadata"].get("deletionTimestamp") or ann.get(c.ANN_POD_PHASE) == "Succeeded" or \
                ann.get(c.ANN_IMPORT_FATAL_ERROR) == "true" or not podspec.is_upload_pvc(pvc) or \
                not should_handle(pvc):
            return Result()
        users = self._pods_using(pvc)
        if users:
            for user in users:
                await self.recorder.warning(pvc, EVENT_TARGET_IN_USE, f"pod {request.namespace}/"
                                            f"{user['metadata']['name']} using PersistentVolumeClaim {request.name}")
            return Result(requeue_after=IN_USE_RECHECK)
        name = podspec.upload_pod_name(pvc)
        labels = pvc["metadata"].get("labels") or {}
        if ann.get(u.ANN_UPLOAD_POD) != name or labels.get("app") != ip.APP_LABELS["app"]:
            pvc = await self._patch(pvc, {u.ANN_UPLOAD_POD: name}, ip.APP_LABELS)
        pki = await self.certs.ensure()
        scratch = ip.scratch_name(pvc) if podspec.needs_scratch(pvc) else None
        try:
            pod = await self.client.create(PODS, podspec.upload_pod(pvc, self._config(), self.options.pod,
                                                                    scratch=scratch))
        except AlreadyExists:
            return Result(requeue_after=RECHECK_INTERVAL)  # the previous pod is still terminating
        server = self.certs.server_cert(pki, name, request.namespace)
        try:
            await self.client.create(SECRETS, podspec.pod_secret(pod, server, pki.client_ca.cert_pem))
        except AlreadyExists:
            # Left by an earlier pod of that name: its owner is gone, so make it this pod's.
            await self.client.update(SECRETS, podspec.pod_secret(pod, server, pki.client_ca.cert_pem))
        log.info("created upload pod %s/%s%s", request.namespace, name, " with scratch space" if scratch else "")
        if scratch:
            updates = await self._ensure_scratch(pvc, pod)
            if updates:
                await self._patch(pvc, updates)
        return Result(requeue_after=RECHECK_INTERVAL)

    async def _update_from_pod(self, pvc: dict[str, Any], pod: dict[str, Any]) -> Result:
        before: dict[str, str] = dict(pvc["metadata"].get("annotations") or {})
        obs = observe(before, pod, self.retry_limit())
        ann = obs.annotations
        ann[u.ANN_UPLOAD_POD] = pod["metadata"]["name"]
        ready = obs.outcome == Outcome.RUNNING and pod_ready(pod) and await self._answers(pod, before, ann)
        ann[c.ANN_POD_READY] = "true" if ready else "false"
        status = pod.get("status") or {}
        if status.get("phase", "Pending") == "Pending" and any(
                v.get("name") == ip.SCRATCH_VOLUME_NAME for v in (pod.get("spec") or {}).get("volumes") or []):
            ann.update(await self._ensure_scratch(pvc, pod))
        elif ann.get(c.ANN_BOUND_CONDITION_REASON) == c.REASON_CREATING_SCRATCH:
            for key in (c.ANN_BOUND_CONDITION, c.ANN_BOUND_CONDITION_MESSAGE, c.ANN_BOUND_CONDITION_REASON):
                ann.pop(key, None)
        changes: dict[str, str | None] = {k: v for k, v in ann.items() if before.get(k) != v}
        changes.update({k: None for k in before if k not in ann})
        if changes:
            pvc = await self._patch(pvc, changes)
        await self._record(pvc, before, obs.outcome, obs.message)
        result = await self._act(pvc, pod, obs.outcome)
        if obs.outcome == Outcome.RUNNING and not ready:
            return Result(requeue_after=READY_RECHECK)  # started, not listening yet: probe again soon
        if obs.outcome in (Outcome.PENDING, Outcome.RUNNING):
            # Nothing to poll while it waits for bytes: the pod's own changes bring us back.
            return Result()
        return result

    async def _answers(self, pod: dict[str, Any], before: dict[str, str], ann: dict[str, str]) -> bool:
        """The readiness probe, once per run of the server: a server found answering stays ready until it
        restarts (a kubelet that probes has said so already; ours reports ready when the process starts)."""
        if before.get(c.ANN_POD_READY) == "true" and before.get(c.ANN_POD_RESTARTS) == ann.get(c.ANN_POD_RESTARTS):
            return True
        pod_ip = (pod.get("status") or {}).get("podIP")
        if not pod_ip:
            return False
        if self._probe_context is None:
            self._probe_context = probe_context((await self.certs.ensure()).server_ca.cert_pem)
        meta = pod["metadata"]
        return await server_answers(str(pod_ip), u.server_hostname(meta["name"], meta["namespace"]),
                                    self._probe_context)

    async def _record(self, pvc: dict[str, Any], before: dict[str, str], outcome: Outcome, message: str) -> None:
        ann = pvc["metadata"].get("annotations") or {}
        if outcome == Outcome.SUCCEEDED and before.get(c.ANN_POD_PHASE) != "Succeeded":
            await self.recorder.normal(pvc, EVENT_UPLOAD_SUCCEEDED, "Upload Successful")
        elif outcome == Outcome.FATAL and before.get(c.ANN_IMPORT_FATAL_ERROR) != "true":
            await self.recorder.warning(pvc, EVENT_UPLOAD_FAILED, message)
        elif outcome == Outcome.RETRYING and ann.get(c.ANN_POD_RESTARTS) != before.get(c.ANN_POD_RESTARTS):
            await self.recorder.warning(pvc, EVENT_UPLOAD_FAILED, message)

    def _pods_using(self, pvc: dict[str, Any]) -> list[dict[str, Any]]:
        """Other unfinished pods of the namespace mounting the claim."""
        name, namespace = pvc["metadata"]["name"], pvc["metadata"]["namespace"]
        own = podspec.upload_pod_name(pvc)
        users = []
        for pod in self.pods.list(namespace):
            if pod["metadata"]["name"] == own or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            claims = {(v.get("persistentVolumeClaim") or {}).get("claimName")
                      for v in (pod.get("spec") or {}).get("volumes") or []}
            if name in claims:
                users.append(pod)
        return users


def add_to_manager(manager: Manager, options: UploadOptions | None = None) -> Controller:
    """Watches PVCs, and pods to the PVC that controls them."""
    options = options or UploadOptions()
    pvcs = manager.informer(PERSISTENT_VOLUME_CLAIMS)
    pods = manager.informer(PODS)
    configs = manager.informer(CDI_CONFIGS)
    controller = Controller(NAME, UploadReconciler(manager.client, pvcs, pods, configs, options),
                            workers=options.workers)

    def owning_pvc(pod: dict[str, Any]) -> list[Request]:
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(c.ANN_PREFIX) != u.UPLOAD_SERVER_LABEL:
            return []
        return [Request(str(ref.get("name")), str(meta.get("namespace") or ""))
                for ref in meta.get("ownerReferences") or []
                if ref.get("controller") and ref.get("kind") == "PersistentVolumeClaim"]

    controller.watch(pvcs, lambda pvc: [Request(pvc["metadata"]["name"], pvc["metadata"].get("namespace") or "")]
                     if podspec.is_upload_pvc(pvc) else [])
    controller.watch(pods, owning_pvc)
    manager.add(controller)
    return controller
