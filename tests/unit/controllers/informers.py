"""A fresh namespace with synced informers on its PVCs and pods and on CDIConfigs: what the worker pod
reconcilers (import, upload) read, for their tests against the real embedded API server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pycdi.controllers.runtime import Informer
from pycdi.kube.client import KubeClient
from pycdi.kube.resources import CDI_CONFIGS, NAMESPACES, PERSISTENT_VOLUME_CLAIMS, PODS


@asynccontextmanager
async def claim_informers(client: KubeClient) -> AsyncIterator[tuple[str, Informer, Informer, Informer]]:
    """(namespace, PVC informer, pod informer, CDIConfig informer), stopped on the way out."""
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    pvcs, pods, configs = (Informer(client, PERSISTENT_VOLUME_CLAIMS, ns), Informer(client, PODS, ns),
                           Informer(client, CDI_CONFIGS))
    for informer in (pvcs, pods, configs):
        informer.start()
    try:
        for informer in (pvcs, pods, configs):
            await asyncio.wait_for(informer.wait_synced(), 10)
        yield ns, pvcs, pods, configs
    finally:
        for informer in (pvcs, pods, configs):
            await informer.stop()
