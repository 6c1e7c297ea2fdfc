"""The embedded control plane: namespace lifecycle, garbage collection, service accounts, CRD status."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..apiserver.service import ObjectService
from .aggregation import AggregationLoop
from .crds import CRDLoop
from .garbage import GarbageCollector
from .loops import Loop, supervise
from .namespaces import NamespaceLoop
from .serviceaccounts import ServiceAccountLoop

log = logging.getLogger(__name__)

__all__ = ["ControlPlane"]


class ControlPlane:
    """Runs the in-process control loops against one `ObjectService`."""

    def __init__(self, service: ObjectService, ca_pem: bytes) -> None:
        self.service = service
        self.namespaces = NamespaceLoop(service)
        self.garbage = GarbageCollector(service)
        self.serviceaccounts = ServiceAccountLoop(service, ca_pem)
        self.crds = CRDLoop(service)
        self.aggregation = AggregationLoop(service)
        self.loops: tuple[Loop, ...] = (self.crds, self.namespaces, self.garbage, self.serviceaccounts,
                                        self.aggregation)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._registered = False

    async def start(self) -> None:
        if self._tasks:
            return
        if not self._registered:
            # The store has no way to unregister; a stopped loop's listener just ignores events.
            for loop in self.loops:
                self.service.store.add_listener(loop.listener)
            self._registered = True
        for loop in self.loops:
            loop.resume()
            self._tasks[loop.name] = asyncio.create_task(supervise(loop, "control"), name=f"control:{loop.name}")

    async def stop(self) -> None:
        for loop in self.loops:
            loop.stop()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def ready(self) -> bool:
        """True once every loop is running and has queued its initial work."""
        return bool(self._tasks) and all(
            not self._tasks[loop.name].done() and loop.synced for loop in self.loops)
