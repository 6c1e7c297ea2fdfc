"""Fixtures: a real store and service with the storage plane (loops and admission plug-ins) running on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pycdi.cluster.storage.plane import StoragePlane
from pycdi.cluster.storage.volumes import delete_volume
from tests.unit.control.conftest import Cluster

NODE = "node01"


class StorageCluster(Cluster):
    def __init__(self, path: Path, data_dir: Path) -> None:
        super().__init__(path)
        self.data_dir = data_dir

    def pvc(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.get("", "persistentvolumeclaims", ns, name)

    def pv(self, name: str) -> dict[str, Any] | None:
        return self.get("", "persistentvolumes", "", name)

    def events(self, ns: str, involved: str) -> list[tuple[str, str]]:
        return [(str(e.get("reason")), str(e.get("message")))
                for e in self.store.iter_objects("core/events", ns)
                if (e.get("involvedObject") or {}).get("name") == involved]


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[tuple[StorageCluster, StoragePlane]]:
    cluster = StorageCluster(tmp_path / "state.db", tmp_path / "data")
    plane = StoragePlane(cluster.service, cluster.data_dir, NODE)
    await cluster.namespace("default")
    await cluster.namespace("ns")
    await plane.start()
    async with asyncio.timeout(5):
        while not (plane.binder_ready() and plane.provisioner_ready()):
            await asyncio.sleep(0)  # readiness is not a store change: yield until the loops have started
    yield cluster, plane
    await plane.stop()
    cluster.store.close()
    # Loop devices outlive the test's temporary directory: detach them with their volumes.
    for pool in (cluster.data_dir / "volumes", cluster.data_dir / "volumes" / ".snapshots"):
        if pool.is_dir():
            for path in pool.iterdir():
                delete_volume(path)
