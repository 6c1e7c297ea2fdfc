"""The import reconciler against a real embedded API server (no node: pod statuses are written by the test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pycdi.controllers.importpod import ImportOptions, ImportReconciler
from pycdi.controllers.runtime import Informer, Request
from pycdi.kube.client import KubeClient
from pycdi.kube.errors import NotFound
from pycdi.kube.resources import EVENTS, PERSISTENT_VOLUME_CLAIMS, PODS
from tests.unit.controllers.informers import claim_informers

ANN = "cdi.kubevirt.io/storage."


class Env:
    def __init__(self, client: KubeClient, ns: str, pvcs: Informer, pods: Informer,
                 reconciler: ImportReconciler) -> None:
        self.client, self.ns, self.pvcs, self.pods, self.reconciler = client, ns, pvcs, pods, reconciler
        self.changed = asyncio.Event()
        for informer in (pvcs, pods):
            informer.add_handler(lambda *_: self.changed.set())

    async def until(self, check: Callable[[], bool]) -> None:
        """Wait for the caches to show what the test wrote (woken by their handlers, no sleeping)."""
        async def loop() -> None:
            while not check():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), 10)

    async def reconcile(self, name: str) -> None:
        await self.reconciler.reconcile(Request(name, self.ns))

    def annotations(self, name: str) -> dict[str, str]:
        pvc = self.pvcs.get(name, self.ns) or {}
        return dict((pvc.get("metadata") or {}).get("annotations") or {})


@pytest.fixture
async def env(client: KubeClient) -> AsyncIterator[Env]:
    async with claim_informers(client) as (ns, pvcs, pods, configs):
        yield Env(client, ns, pvcs, pods, ImportReconciler(client, pvcs, pods, configs, ImportOptions()))


async def bound_pvc(env: Env, name: str, annotations: dict[str, str]) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                     "resources": {"requests": {"storage": "1Gi"}}}}
    pvc = await env.client.create(PERSISTENT_VOLUME_CLAIMS, body, env.ns)
    pvc["status"] = {"phase": "Bound"}
    pvc = await env.client.update_status(PERSISTENT_VOLUME_CLAIMS, pvc)
    rv = pvc["metadata"]["resourceVersion"]
    await env.until(lambda: (env.pvcs.get(name, env.ns) or {}).get("metadata", {}).get("resourceVersion") == rv)
    return pvc


async def set_pod_status(env: Env, name: str, status: dict[str, Any]) -> None:
    pod = await env.client.get(PODS, name, env.ns)
    pod["status"] = status
    rv = (await env.client.update_status(PODS, pod))["metadata"]["resourceVersion"]
    await env.until(lambda: (env.pods.get(name, env.ns) or {}).get("metadata", {}).get("resourceVersion") == rv)


def terminated(code: int, message: dict[str, Any], phase: str) -> dict[str, Any]:
    return {"phase": phase, "containerStatuses": [{
        "name": "importer", "image": "i", "restartCount": 0, "ready": False, "imageID": "",
        "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                 "message": json.dumps(message)}}}]}


async def test_unbound_claims_wait(env: Env) -> None:
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "pending", "annotations": {f"{ANN}import.source": "none"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    await env.client.create(PERSISTENT_VOLUME_CLAIMS, body, env.ns)
    await env.until(lambda: env.pvcs.get("pending", env.ns) is not None)
    await env.reconcile("pending")
    with pytest.raises(NotFound):
        await env.client.get(PODS, "importer-pending", env.ns)


async def test_pod_made_then_success_cleans_up(env: Env) -> None:
    await bound_pvc(env, "disk", {f"{ANN}import.source": "none"})
    await env.reconcile("disk")
    pod = await env.client.get(PODS, "importer-disk", env.ns)
    assert pod["spec"]["containers"][0]["env"][0] == {"name": "IMPORTER_SOURCE", "value": "none"}
    await env.until(lambda: env.annotations("disk").get(f"{ANN}import.importPodName") == "importer-disk" and
                    env.pods.get("importer-disk", env.ns) is not None)
    # Reconciling again with the pod there does not make a second one, and mirrors its state.
    await set_pod_status(env, "importer-disk", {"phase": "Running", "podIP": "127.0.0.9", "containerStatuses": [
        {"name": "importer", "image": "i", "restartCount": 0, "ready": True, "imageID": "",
         "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]})
    await env.reconcile("disk")
    ann = env.reconciler._pvc(Request("disk", env.ns))["metadata"]["annotations"]  # type: ignore[index]
    assert ann[f"{ANN}pod.phase"] == "Running" and ann[f"{ANN}condition.running"] == "true"
    await set_pod_status(env, "importer-disk", terminated(0, {"message": "Import Complete"}, "Succeeded"))
    await env.reconcile("disk")
    with pytest.raises(NotFound):
        await env.client.get(PODS, "importer-disk", env.ns)
    pvc = await env.client.get(PERSISTENT_VOLUME_CLAIMS, "disk", env.ns)
    assert pvc["metadata"]["annotations"][f"{ANN}pod.phase"] == "Succeeded"
    assert pvc["metadata"]["labels"]["app"] == "containerized-data-importer"
    # The pod's deletion, seen by a cache still showing the claim as running, makes no new pod.
    await env.reconcile("disk")
    with pytest.raises(NotFound):
        await env.client.get(PODS, "importer-disk", env.ns)
    events = (await env.client.list(EVENTS, env.ns))["items"]
    assert [e["reason"] for e in events if e["involvedObject"]["name"] == "disk"] == ["ImportSucceeded"]


async def test_scratch_request_recreates_the_pod_with_scratch(env: Env) -> None:
    await bound_pvc(env, "q", {f"{ANN}import.source": "http", f"{ANN}import.endpoint": "http://x/q.qcow2"})
    await env.reconcile("q")
    first = await env.client.get(PODS, "importer-q", env.ns)
    await env.until(lambda: env.pods.get("importer-q", env.ns) is not None)
    await set_pod_status(env, "importer-q", terminated(0, {"scratchSpaceRequired": True, "message": "m"},
                                                       "Succeeded"))
    await env.reconcile("q")
    await env.until(lambda: env.pods.get("importer-q", env.ns) is None)
    assert env.annotations("q")[f"{ANN}import.requiresScratch"] == "true"
    await env.reconcile("q")
    second = await env.client.get(PODS, "importer-q", env.ns)
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    volumes = {v["name"]: v for v in second["spec"]["volumes"]}
    assert volumes["cdi-scratch-vol"]["persistentVolumeClaim"]["claimName"] == "q-scratch"
    scratch = await env.client.get(PERSISTENT_VOLUME_CLAIMS, "q-scratch", env.ns)
    assert scratch["metadata"]["ownerReferences"][0]["uid"] == second["metadata"]["uid"]
    assert scratch["spec"]["storageClassName"] == "local"
    pvc = await env.client.get(PERSISTENT_VOLUME_CLAIMS, "q", env.ns)
    assert pvc["metadata"]["annotations"][f"{ANN}condition.bound.reason"] == "CreatingScratchSpace"


async def test_permanent_failure_deletes_the_pod_and_never_retries(env: Env) -> None:
    await bound_pvc(env, "bad", {f"{ANN}import.source": "http", f"{ANN}import.endpoint": "http://x/404"})
    await env.reconcile("bad")
    await env.until(lambda: env.pods.get("importer-bad", env.ns) is not None)
    message = {"message": "Unable to process data: expected status code 200, got 404", "transient": False}
    await set_pod_status(env, "importer-bad", terminated(1, message, "Running"))
    await env.reconcile("bad")
    await env.until(lambda: env.pods.get("importer-bad", env.ns) is None and
                    env.annotations("bad").get(f"{ANN}import.fatalError") == "true")
    assert env.annotations("bad")[f"{ANN}condition.running.message"] == message["message"]
    await env.reconcile("bad")
    with pytest.raises(NotFound):
        await env.client.get(PODS, "importer-bad", env.ns)


async def test_a_pod_in_use_blocks_the_import(env: Env) -> None:
    await bound_pvc(env, "used", {f"{ANN}import.source": "none"})
    user = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vm"},
            "spec": {"containers": [{"name": "c", "image": "i"}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "used"}}]}}
    await env.client.create(PODS, user, env.ns)
    await env.until(lambda: env.pods.get("vm", env.ns) is not None)
    result = await env.reconciler.reconcile(Request("used", env.ns))
    assert result.requeue_after
    with pytest.raises(NotFound):
        await env.client.get(PODS, "importer-used", env.ns)
    events = (await env.client.list(EVENTS, env.ns))["items"]
    assert any(e["reason"] == "ImportTargetInUse" for e in events)
