"""The manager: shared informers, the controllers using them, readiness and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ...kube.client import KubeClient
from ...kube.resources import Resource
from .cache import Informer
from .controller import Controller

log = logging.getLogger(__name__)


class Manager:
    """Owns one client, one informer per (resource, namespace) and every controller; `ready` once all
    caches have synced and each controller has handled what the initial lists gave it."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.controllers: list[Controller] = []
        self._informers: dict[tuple[Resource, str | None], Informer] = {}
        self._starting: asyncio.Task[None] | None = None
        self._started = False

    def informer(self, resource: Resource, namespace: str | None = None) -> Informer:
        key = (resource, namespace)
        if key not in self._informers:
            self._informers[key] = Informer(self.client, resource, namespace)
            if self._started:
                self._informers[key].start()
        return self._informers[key]

    def add(self, controller: Controller) -> None:
        self.controllers.append(controller)

    def ready(self) -> bool:
        return (self._started and all(i.synced for i in self._informers.values())
                and all(c.ready for c in self.controllers))

    def start(self) -> None:
        """Start the informers now and each controller's workers once its caches have synced; returns at once."""
        self._started = True
        for informer in self._informers.values():
            informer.start()
        self._starting = asyncio.create_task(self._start_controllers(), name="controller-manager-start")

    async def _start_controllers(self) -> None:
        await asyncio.gather(*(c.start() for c in self.controllers))
        log.info("controllers started: %s", ", ".join(c.name for c in self.controllers))

    async def wait_ready(self, poll: float = 0.02) -> None:
        """For the standalone command and tests: return once `ready()` (no readiness push exists to await)."""
        while not self.ready():
            await asyncio.sleep(poll)

    async def stop(self) -> None:
        """Stop workers first (no reconcile is left half-way behind a closed client), then caches, then the client."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        for controller in self.controllers:
            await controller.stop()
        for informer in self._informers.values():
            await informer.stop()
        await self.client.close()
