"""Fixtures: a real store, catalog and service on a temporary SQLite file, with the control plane running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pycdi.cluster.apiserver.catalog import Catalog
from pycdi.cluster.apiserver.resources import ResourceInfo
from pycdi.cluster.apiserver.service import ObjectService, WriteContext
from pycdi.cluster.apiserver.store import Event, Store
from pycdi.cluster.control import ControlPlane

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"


class Cluster:
    """The parts under test plus a way to wait for the store to reach a state."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.catalog = Catalog()
        self.service = ObjectService(self.store, self.catalog)
        self.ctx = WriteContext()
        self._changed = asyncio.Event()
        self.store.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        # What APIServer does: serve the resources of stored CRDs.
        if event.key == CRD_KEY:
            if event.type == "DELETED":
                self.catalog.remove_crd(event.name)
            else:
                self.catalog.set_crd(event.object)
        self._changed.set()

    def info(self, group: str, plural: str) -> ResourceInfo:
        info = self.catalog.preferred(group, plural)
        assert info is not None
        return info

    def get(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.service.find(self.info(group, plural), namespace, name)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Re-check `predicate` after every committed change until it is truthy."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                result = predicate()
                if result:
                    return result
                await self._changed.wait()

    async def create(self, group: str, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.service.create(self.info(group, plural), namespace, body, self.ctx)

    async def delete(
        self, group: str, plural: str, namespace: str, name: str, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.service.delete(self.info(group, plural), namespace, name, options, self.ctx)

    async def namespace(self, name: str) -> dict[str, Any]:
        return await self.create(
            "", "namespaces", "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )

    async def configmap(self, namespace: str, name: str, **meta: Any) -> dict[str, Any]:
        return await self.create(
            "",
            "configmaps",
            namespace,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": {"k": "v"}},
        )


def owner_ref(owner: dict[str, Any], block: bool = False) -> dict[str, Any]:
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path / "state.db")
    yield c
    c.store.close()


@pytest.fixture
async def plane(cluster: Cluster) -> AsyncIterator[ControlPlane]:
    cp = ControlPlane(cluster.service, CA_PEM)
    await cp.start()
    async with asyncio.timeout(5):
        while not cp.ready():  # readiness is not a store change: yield until the loops have started
            await asyncio.sleep(0)
    yield cp
    await cp.stop()
