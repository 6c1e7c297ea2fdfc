"""The upload reconciler against a real embedded API server (no node: pod statuses are written by the test):
which claims get an upload pod, and how soon a started server is probed again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pycdi.controllers.runtime import Informer, Request
from pycdi.controllers.uploadpod.controller import (
    FIRST_READY_RECHECK,
    READY_RECHECK,
    UploadOptions,
    UploadReconciler,
)
from pycdi.kube.client import KubeClient
from pycdi.kube.errors import NotFound
from pycdi.kube.resources import CDI_CONFIGS, PERSISTENT_VOLUME_CLAIMS, PODS
from tests.unit.controllers.informers import claim_informers

ANN = "cdi.kubevirt.io/storage."
#: A loopback address nothing listens on: the probe is refused at once.
NOBODY = "127.255.255.254"


@pytest.fixture
async def reconciler(client: KubeClient) -> AsyncIterator[tuple[UploadReconciler, str, Informer, Informer, Informer]]:
    async with claim_informers(client) as (ns, pvcs, pods, configs):
        yield UploadReconciler(client, pvcs, pods, configs, UploadOptions()), ns, pvcs, pods, configs


async def _seen(informer: Informer, name: str, ns: str, rv: str) -> None:
    """Wait for the informer's cache to show what the test wrote (woken by its handler)."""
    changed = asyncio.Event()
    informer.add_handler(lambda *_: changed.set())

    async def loop() -> None:
        while (informer.get(name, ns) or {}).get("metadata", {}).get("resourceVersion") != rv:
            await changed.wait()
            changed.clear()
    await asyncio.wait_for(loop(), 10)


Env = tuple[UploadReconciler, str, Informer, Informer, Informer]


def _upload_claim(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "annotations": {f"{ANN}upload.target": ""}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                     "resources": {"requests": {"storage": "1Gi"}}}}


async def test_an_unbound_claim_waits_for_its_first_consumer_unless_that_gate_is_off(
        client: KubeClient, reconciler: Env) -> None:
    """As upstream's upload controller: HonorWaitForFirstConsumer (on by default) leaves a claim that is not bound
    and not asked to bind at once without an upload pod; with the gate off, the pod is its first consumer."""
    rec, ns, pvcs, _, configs = reconciler
    pvc = await client.create(PERSISTENT_VOLUME_CLAIMS, _upload_claim("later"), ns)
    await _seen(pvcs, "later", ns, pvc["metadata"]["resourceVersion"])
    await rec.reconcile(Request("later", ns))
    with pytest.raises(NotFound):
        await client.get(PODS, "cdi-upload-later", ns)
    config = await client.create(CDI_CONFIGS, {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "CDIConfig",
                                               "metadata": {"name": "config"}, "spec": {"featureGates": []}})
    await _seen(configs, "config", "", config["metadata"]["resourceVersion"])
    await rec.reconcile(Request("later", ns))
    assert (await client.get(PODS, "cdi-upload-later", ns))["metadata"]["name"] == "cdi-upload-later"


async def test_a_server_not_answering_yet_is_probed_again_soon_then_less_often(
        client: KubeClient, reconciler: Env) -> None:
    rec, ns, pvcs, pods, _ = reconciler
    pvc = await client.create(PERSISTENT_VOLUME_CLAIMS, _upload_claim("up"), ns)
    pvc["status"] = {"phase": "Bound"}
    pvc = await client.update_status(PERSISTENT_VOLUME_CLAIMS, pvc)
    await _seen(pvcs, "up", ns, pvc["metadata"]["resourceVersion"])
    await rec.reconcile(Request("up", ns))
    pod = await client.get(PODS, "cdi-upload-up", ns)
    pod["status"] = {"phase": "Running", "podIP": NOBODY,
                     "containerStatuses": [{"name": "cdi-upload-server", "ready": True, "restartCount": 0,
                                            "state": {"running": {"startedAt": "2026-11-23T00:00:00Z"}}}]}
    pod = await client.update_status(PODS, pod)
    await _seen(pods, "cdi-upload-up", ns, pod["metadata"]["resourceVersion"])

    first = await rec.reconcile(Request("up", ns))
    assert first.requeue_after == FIRST_READY_RECHECK
    assert (await client.get(PERSISTENT_VOLUME_CLAIMS, "up", ns))["metadata"]["annotations"][f"{ANN}pod.ready"] \
        == "false"
    # The delay follows how long the server has not been answering, up to the cap.
    uid = pod["metadata"]["uid"]
    rec._not_answering_since[uid] -= 0.2
    later = await rec.reconcile(Request("up", ns))
    assert later.requeue_after is not None and 0.2 <= later.requeue_after < READY_RECHECK
    rec._not_answering_since[uid] -= 60
    assert (await rec.reconcile(Request("up", ns))).requeue_after == READY_RECHECK
