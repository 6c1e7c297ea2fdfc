"""Informer cache, controller retries and the manager, against a real embedded API server."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from pycdi.cli.controllers import start_controllers
from pycdi.controllers.runtime import Controller, Informer, Manager, RateLimitingQueue, Request, Result
from pycdi.kube.client import KubeClient
from pycdi.kube.resources import CDI_CONFIGS, CONFIG_MAPS, NAMESPACES, STORAGE_PROFILES

Change = tuple[str, str | None, str | None]


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {}}


async def namespace(client: KubeClient) -> str:
    name = f"ns-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def recording(informer: Informer) -> asyncio.Queue[Change]:
    changes: asyncio.Queue[Change] = asyncio.Queue()

    def handler(kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        name = lambda o: o["metadata"]["name"] if o else None  # noqa: E731
        changes.put_nowait((kind, name(old), name(new)))

    informer.add_handler(handler)
    return changes


async def next_change(changes: asyncio.Queue[Change]) -> Change:
    return await asyncio.wait_for(changes.get(), 10)


async def test_informer_lists_then_follows_adds_updates_deletes(client: KubeClient) -> None:
    ns = await namespace(client)
    await client.create(CONFIG_MAPS, cm("old", app="x"), ns)
    informer = Informer(client, CONFIG_MAPS, ns)
    informer.add_index("app", lambda o: [(o["metadata"].get("labels") or {}).get("app", "")])
    changes = recording(informer)
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_synced(), 10)
        assert await next_change(changes) == ("ADDED", None, "old")
        await client.create(CONFIG_MAPS, cm("new", app="y"), ns)
        assert await next_change(changes) == ("ADDED", None, "new")
        await client.patch(CONFIG_MAPS, "new", {"metadata": {"labels": {"app": "x"}}}, ns)
        assert await next_change(changes) == ("MODIFIED", "new", "new")
        assert [o["metadata"]["name"] for o in informer.by_index("app", "x")] == ["new", "old"]
        assert informer.by_index("app", "y") == []
        await client.delete(CONFIG_MAPS, "old", ns)
        assert await next_change(changes) == ("DELETED", "old", "old")
        assert informer.get("old", ns) is None and informer.get("new", ns) is not None
        assert [o["metadata"]["name"] for o in informer.list(ns)] == ["new"]
    finally:
        await informer.stop()


async def test_a_late_handler_is_replayed_the_cache(client: KubeClient) -> None:
    ns = await namespace(client)
    await client.create(CONFIG_MAPS, cm("there"), ns)
    informer = Informer(client, CONFIG_MAPS, ns)
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_synced(), 10)
        changes = recording(informer)
        assert await next_change(changes) == ("ADDED", None, "there")
    finally:
        await informer.stop()


class Flaky:
    """Fails `failures` times per request, then succeeds; records every call."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[Request] = []
        self.succeeded: asyncio.Queue[Request] = asyncio.Queue()

    async def reconcile(self, request: Request) -> Result:
        self.calls.append(request)
        if self.calls.count(request) <= self.failures:
            raise RuntimeError(f"failure {self.calls.count(request)}")
        self.succeeded.put_nowait(request)
        return Result()


async def test_failures_back_off_then_succeed(client: KubeClient) -> None:
    ns = await namespace(client)
    informer = Informer(client, CONFIG_MAPS, ns)
    reconciler = Flaky(failures=3)
    controller = Controller("flaky", reconciler, workers=2, queue=RateLimitingQueue(base_delay=0.001))
    controller.watch(informer)
    informer.start()
    await controller.start()
    try:
        await client.create(CONFIG_MAPS, cm("one"), ns)
        assert await asyncio.wait_for(reconciler.succeeded.get(), 10) == Request("one", ns)
        assert reconciler.calls.count(Request("one", ns)) == 4
        assert controller.queue.num_requeues(Request("one", ns)) == 0  # forgotten after the success
    finally:
        await controller.stop()
        await informer.stop()


async def test_gives_up_after_max_retries_with_a_logged_reason(client: KubeClient,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    reconciler = Flaky(failures=100)
    controller = Controller("doomed", reconciler, max_retries=3, queue=RateLimitingQueue(base_delay=0.001))
    gave_up = asyncio.Event()

    class Watcher(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "giving up" in record.getMessage():
                gave_up.set()

    watcher = Watcher()
    logging.getLogger("pycdi.controllers.runtime.controller").addHandler(watcher)
    controller.enqueue_on_start(Request("x"))
    await controller.start()
    try:
        await asyncio.wait_for(gave_up.wait(), 10)
        assert len(reconciler.calls) == 4  # the first try and three retries
        assert "failure 4" in caplog.text and "giving up on x after 3 retries" in caplog.text
        assert controller.queue.pending() == set()
        assert controller.ready  # the initial request was handled, even if it failed
    finally:
        logging.getLogger("pycdi.controllers.runtime.controller").removeHandler(watcher)
        await controller.stop()


async def test_requeue_after_comes_back() -> None:
    calls: asyncio.Queue[int] = asyncio.Queue()

    class Twice:
        count = 0

        async def reconcile(self, request: Request) -> Result:
            self.count += 1
            calls.put_nowait(self.count)
            return Result(requeue_after=0.001) if self.count == 1 else Result()

    controller = Controller("twice", Twice())
    controller.enqueue_on_start(Request("r"))
    await controller.start()
    try:
        assert [await asyncio.wait_for(calls.get(), 10) for _ in range(2)] == [1, 2]
    finally:
        await controller.stop()


async def test_manager_with_the_cdi_controllers_is_ready_and_stops_cleanly(kubeconfig: Path,
                                                                           client: KubeClient) -> None:
    manager: Manager = start_controllers(kubeconfig)
    try:
        await asyncio.wait_for(manager.wait_ready(), 20)
        # Ready means the first reconciles ran: the objects are there now.
        config = await client.get(CDI_CONFIGS, "config")
        assert config["status"]["filesystemOverhead"]["global"] == "0.06"
        profile = await client.get(STORAGE_PROFILES, "local")
        assert profile["status"]["claimPropertySets"] == [
            {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
            {"accessModes": ["ReadWriteOnce"], "volumeMode": "Block"}]
    finally:
        await manager.stop()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
             and (t.get_name().startswith(("informer-", "cdiconfig", "storageprofile")))]
    assert tasks == []
