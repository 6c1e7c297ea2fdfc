"""The loop runner: de-duplication, retries with back-off, readiness and restart of the control plane."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable

from pycdi.cluster.apiserver.store import Event
from pycdi.cluster.control import ControlPlane
from pycdi.cluster.control.loops import Loop, WorkQueue

from .conftest import Cluster


async def test_work_queue_deduplicates_pending_keys() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert await queue.get() == "a"
    queue.add("a")  # re-queued once taken: an event during a reconcile is not lost
    assert [await queue.get(), await queue.get()] == ["b", "a"]


class Flaky(Loop):
    """Fails its first two reconciles of each key, then records success."""

    name = "flaky"

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster.service)
        self.attempts: dict[Hashable, int] = {}
        self.done: asyncio.Queue[Hashable] = asyncio.Queue()

    def on_event(self, event: Event) -> None:
        self.queue.add(event.name)

    def initial_keys(self) -> Iterable[Hashable]:
        return ["initial"]

    async def reconcile(self, key: Hashable) -> None:
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.attempts[key] < 3:
            raise RuntimeError("transient")
        await self.done.put(key)


async def test_failed_reconciles_are_retried_and_the_loop_survives(cluster: Cluster) -> None:
    loop = Flaky(cluster)
    cluster.store.add_listener(loop.listener)
    task = asyncio.create_task(loop.run())
    try:
        async with asyncio.timeout(5):
            assert await loop.done.get() == "initial"
            await cluster.namespace("poke")
            assert await loop.done.get() == "poke"
        assert loop.attempts == {"initial": 3, "poke": 3}
        assert not task.done()
    finally:
        loop.stop()
        task.cancel()


async def test_control_plane_ready_stop_and_restart(cluster: Cluster) -> None:
    plane = ControlPlane(cluster.service, b"ca")
    assert not plane.ready()
    await plane.start()
    async with asyncio.timeout(5):
        while not plane.ready():
            await asyncio.sleep(0)
    await plane.stop()
    assert not plane.ready()
    await plane.start()
    try:
        await cluster.namespace("after-restart")
        await cluster.wait_for(lambda: cluster.get("", "serviceaccounts", "after-restart", "default"))
    finally:
        await plane.stop()
