"""The upload controller (upstream's upload-controller): a PVC annotated `storage.upload.target` gets the upload
worker pod `cdi-upload-<pvc>`; the pod's state goes back onto the PVC (`storage.pod.phase`, `storage.pod.ready`...).

It is the import controller's sibling: the same claim/pod/scratch mechanics (inherited from ImportReconciler),
another pod, a TLS Secret per pod, and readiness instead of progress.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from ...api import constants as c
from ...api import upload as u
from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists
from ...kube.events import EventRecorder
from ...kube.resources import CDI_CONFIGS, PERSISTENT_VOLUME_CLAIMS, PODS, SECRETS
from ..importpod import ImportOptions, ImportReconciler
from ..importpod import podspec as ip
from ..importpod.controller import should_handle
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
#: A started server not answering yet is probed again after as long as it has not been answering (at least
#: FIRST_READY_RECHECK, at most READY_RECHECK): the server listens about 0.1 s after its process starts, and the
#: user's `image-upload` waits for the probe (a fixed half second cost every upload 0.4 s of waiting).
FIRST_READY_RECHECK = 0.05
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
    POD_ANNOTATION = u.ANN_UPLOAD_POD
    WORKER = "upload"
    IN_USE_EVENT = EVENT_TARGET_IN_USE

    def __init__(self, client: KubeClient, pvcs: Informer, pods: Informer, configs: Informer,
                 options: UploadOptions) -> None:
        super().__init__(client, pvcs, pods, configs, ImportOptions(pod=options.pod, retry_limit=options.retry_limit,
                                                                    workers=options.workers))
        self.upload_options = options
        self.certs = UploadCertificates(client, options.cdi_namespace)
        self.recorder = EventRecorder(client, NAME)
        self._probe_context: ssl.SSLContext | None = None
        #: pod uid -> when (monotonic) the readiness probe first failed in its current run.
        self._not_answering_since: dict[str, float] = {}

    def _is_mine(self, pvc: dict[str, Any]) -> bool:
        return podspec.is_upload_pvc(pvc)

    def _pod_name(self, pvc: dict[str, Any]) -> str:
        return podspec.upload_pod_name(pvc)

    def _should_handle(self, pvc: dict[str, Any]) -> bool:
        return should_handle(pvc, self._config())  # upstream gates uploads on HonorWaitForFirstConsumer too

    def _needs_scratch(self, pvc: dict[str, Any]) -> bool:
        return podspec.needs_scratch(pvc)

    async def _new_pod(self, pvc: dict[str, Any], scratch: str | None) -> dict[str, Any]:
        """The upload pod, then its serving certificate in a Secret the pod owns."""
        pki = await self.certs.ensure()
        pod = await self.client.create(PODS, podspec.upload_pod(pvc, self._config(), self.options.pod,
                                                                scratch=scratch))
        server = self.certs.server_cert(pki, pod["metadata"]["name"], pod["metadata"]["namespace"])
        try:
            await self.client.create(SECRETS, podspec.pod_secret(pod, server, pki.client_ca.cert_pem))
        except AlreadyExists:
            # Left by an earlier pod of that name: its owner is gone, so make it this pod's.
            await self.client.update(SECRETS, podspec.pod_secret(pod, server, pki.client_ca.cert_pem))
        return pod

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
        uid = str(pod["metadata"].get("uid"))
        if obs.outcome == Outcome.RUNNING and not ready:
            # Started, not listening yet: probe again soon. (Time, not a count of probes: pod events probe too.)
            since = self._not_answering_since.setdefault(uid, time.monotonic())
            return Result(requeue_after=min(READY_RECHECK, max(FIRST_READY_RECHECK, time.monotonic() - since)))
        self._not_answering_since.pop(uid, None)
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
