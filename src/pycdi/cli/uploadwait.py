"""What `pycdi image-upload` waits for: the upload server ready, then processing done, reading the PVC and the
DataVolume on every change (a watch) and at least every 2 s (virtctl's poll interval, for its event checks)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, cast

import aiohttp

from ..api import constants as c
from ..api import upload as u
from ..kube.client import KubeClient
from ..kube.errors import APIStatusError, Forbidden, NotFound
from ..kube.resources import DATA_VOLUMES, EVENTS, PERSISTENT_VOLUME_CLAIMS, PODS, Resource

Obj = dict[str, Any]
#: virtctl's uploadReadyWaitInterval / processingWaitInterval.
INTERVAL = 2.0
PROVISIONING_FAILED = "ProvisioningFailed"
#: A ProvisioningFailed event with this text is a retried conflict, not a failure (virtctl ignores it too).
OPTIMISTIC_LOCK = "the object has been modified; please apply your changes to the latest version and try again"


class WaitFailed(Exception):
    """What is being waited for cannot happen; the message says why."""


def annotations_of(obj: Obj | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def parse_bool(value: str | None) -> bool:
    """Go's strconv.ParseBool, false for anything it would refuse."""
    return (value or "") in ("1", "t", "T", "TRUE", "true", "True")


async def changes(client: KubeClient, resource: Resource, namespace: str, name: str,
                  interval: float = INTERVAL) -> AsyncIterator[Obj | None]:
    """The object now (None while it does not exist), then again after each change or `interval` seconds."""
    while True:
        try:
            obj: Obj | None = await client.get(resource, name, namespace)
        except NotFound:
            obj = None
        yield obj
        version = str((obj or {}).get("metadata", {}).get("resourceVersion") or "")
        events = cast(AsyncGenerator[Obj, None], client.watch(
            resource, namespace, resource_version=version, field_selector=f"metadata.name={name}",
            timeout_seconds=int(interval) + 1, allow_bookmarks=False))
        try:
            async with asyncio.timeout(interval), contextlib.aclosing(events):
                async for event in events:
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED", "ERROR"):
                        break
        except TimeoutError:
            pass
        except (APIStatusError, aiohttp.ClientError, OSError):
            await asyncio.sleep(interval)  # no watch allowed or possible: poll as virtctl does


async def event_errors(client: KubeClient, namespace: str, pvc: Obj | None, dv: Obj | None) -> None:
    """handleEventErrors: a ProvisioningFailed event of the PVC or an ErrClaimNotValid of the DataVolume is
    the answer (virtctl lists every event of the namespace; the name selects the same ones here)."""
    for obj, kind, reason, prefix in ((pvc, "PersistentVolumeClaim", PROVISIONING_FAILED, "Provisioning failed"),
                                      (dv, "DataVolume", c.EVENT_ERR_CLAIM_NOT_VALID, "Claim not valid")):
        if obj is None:
            continue
        meta = obj["metadata"]
        try:
            listed = await client.list(EVENTS, namespace, field_selector=f"involvedObject.name={meta['name']}")
        except (Forbidden, NotFound):
            return  # a user who may not read events still gets the wait, without this shortcut
        for event in listed["items"]:
            involved = event.get("involvedObject") or {}
            if involved.get("kind") != kind or involved.get("uid") != meta.get("uid") or event.get("reason") != reason:
                continue
            message = str(event.get("message") or "")
            if reason == PROVISIONING_FAILED and OPTIMISTIC_LOCK in message:
                continue
            raise WaitFailed(f"{prefix}: {message}")


async def _within(seconds: float, what: Callable[[], Any]) -> Any:
    # A second at least: `--wait-secs=0` still looks once, as virtctl's PollImmediately does.
    async with asyncio.timeout(max(seconds, 1.0)):
        return await what()


async def upload_ready(client: KubeClient, namespace: str, name: str, *, dv_mode: bool, force_bind: bool,
                       timeout: float, say: Callable[[str], None]) -> Obj:
    """waitUploadServerReady / waitDvUploadScheduled: the PVC once its upload server takes uploads."""

    async def wait() -> Obj:
        waiting = False
        missing_said = False
        async for obj in changes(client, DATA_VOLUMES if dv_mode else PERSISTENT_VOLUME_CLAIMS, namespace, name):
            if obj is None:
                if dv_mode and not missing_said:
                    say(f"DV {name} not found... ")
                    missing_said = True
                continue
            if dv_mode:
                phase = str((obj.get("status") or {}).get("phase") or "")
                if phase in (c.DataVolumePhase.WAIT_FOR_FIRST_CONSUMER, c.DataVolumePhase.PENDING_POPULATION) \
                        and not force_bind:
                    raise WaitFailed(f"cannot upload to DataVolume in {phase} phase, make sure the PVC is Bound, "
                                     "or use force-bind flag")
                if phase == c.DataVolumePhase.FAILED:
                    raise WaitFailed(f"DataVolume {namespace}/{name} failed: {_dv_reason(obj)}")
                ready = phase == c.DataVolumePhase.UPLOAD_READY
                pvc = await _get(client, PERSISTENT_VOLUME_CLAIMS, namespace,
                                 str((obj.get("status") or {}).get("claimName") or name))
                dv: Obj | None = obj
            else:
                pvc, dv = obj, None
                ready = parse_bool(annotations_of(pvc).get(c.ANN_POD_READY))
            if ready and pvc is not None:
                if waiting:
                    say("Pod now ready")
                return pvc
            await event_errors(client, namespace, pvc, dv)
            if not waiting:
                say(f"Waiting for PVC {name} upload pod to be ready...")
                waiting = True
        raise AssertionError("unreachable")

    try:
        result: Obj = await _within(timeout, wait)
    except TimeoutError:
        raise WaitFailed(f"timed out after {timeout:g}s waiting for PVC {namespace}/{name} upload pod to be ready"
                         ) from None
    return result


async def _get(client: KubeClient, resource: Resource, namespace: str, name: str) -> Obj | None:
    try:
        return await client.get(resource, name, namespace)
    except NotFound:
        return None


async def failure_reason(client: KubeClient, pvc: Obj) -> str:
    """Why the upload pod's last run failed: the PVC's Running condition message, else the termination message
    of the pod's previous run (it has restarted by now, and the condition speaks of the new run)."""
    ann = annotations_of(pvc)
    message = ann.get(c.ANN_RUNNING_CONDITION_MESSAGE) or ""
    meta = pvc["metadata"]
    pod_name = ann.get(u.ANN_UPLOAD_POD) or f"{u.UPLOAD_POD_PREFIX}-{meta['name']}"
    if not message:
        try:
            pod = await client.get(PODS, pod_name, meta["namespace"])
        except APIStatusError:
            pod = {}
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("lastState") or {}).get("terminated") or \
                (status.get("state") or {}).get("terminated") or {}
            message = _termination_text(str(terminated.get("message") or ""))
            if message:
                break
    return message or f"see `kubectl logs -n {meta['namespace']} {pod_name} --previous`"


def _termination_text(text: str) -> str:
    """Workers write their termination message as JSON with a `message` (upstream's format)."""
    try:
        decoded = json.loads(text)
    except ValueError:
        return text.strip()
    return str(decoded.get("message") or "") if isinstance(decoded, dict) else text.strip()


def _dv_reason(dv: Obj) -> str:
    """The Running (else Ready) condition's message: where the DataVolume controller says what went wrong."""
    conditions = {cond.get("type"): cond for cond in (dv.get("status") or {}).get("conditions") or []}
    for kind in (c.DataVolumeConditionType.RUNNING, c.DataVolumeConditionType.READY):
        cond = conditions.get(kind) or {}
        if cond.get("message"):
            return f"{cond.get('reason', '')}: {cond['message']}".lstrip(": ")
    return "no reason given"


async def processing_done(client: KubeClient, namespace: str, name: str, *, dv_mode: bool, restarts: int,
                          timeout: float, say: Callable[[str], None]) -> None:
    """waitUploadProcessingComplete: the PVC's upload pod Succeeded (and, for a DataVolume, the DataVolume).
    Unlike virtctl, a failed processing ends the wait with its reason instead of waiting out the 24 hours: the
    pod failing for good, or restarting (more `storage.pod.restarts` than when the upload began)."""

    async def wait() -> None:
        async for pvc in changes(client, PERSISTENT_VOLUME_CLAIMS, namespace, name):
            if pvc is None:
                raise WaitFailed(f"PVC {namespace}/{name} was deleted")
            ann = annotations_of(pvc)
            if ann.get(c.ANN_POD_PHASE) == "Succeeded":
                say("Processing completed successfully")
                break
            if parse_bool(ann.get(c.ANN_IMPORT_FATAL_ERROR)) or ann.get(c.ANN_POD_PHASE) == "Failed":
                raise WaitFailed(f"Processing failed: {await failure_reason(client, pvc)}")
            if int(ann.get(c.ANN_POD_RESTARTS) or 0) > restarts:
                raise WaitFailed("Processing failed and the upload pod restarted, ready for another upload: "
                                 f"{await failure_reason(client, pvc)}")
        if not dv_mode:
            return
        async for dv in changes(client, DATA_VOLUMES, namespace, name):
            phase = str(((dv or {}).get("status") or {}).get("phase") or "")
            if dv is None or phase == c.DataVolumePhase.SUCCEEDED:
                return  # a DataVolume garbage-collected after completion is done too
            if phase == c.DataVolumePhase.FAILED:
                raise WaitFailed(f"DataVolume {namespace}/{name} failed: {_dv_reason(dv)}")

    try:
        await _within(timeout, wait)
    except TimeoutError:
        raise WaitFailed("Timed out waiting for post upload processing to complete, please check upload pod status "
                         "for progress") from None
