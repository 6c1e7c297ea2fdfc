"""A tiny control-loop runner: store events feed a de-duplicating work queue; failures retry with back-off."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Hashable, Iterable
from typing import Any

from ..apiserver import errors
from ..apiserver.resources import ResourceInfo
from ..apiserver.service import ObjectService
from ..apiserver.store import Event

log = logging.getLogger(__name__)

#: Back-off after a failed reconcile: BASE * 2**(n-1) seconds, capped (kube's workqueue uses 5 ms .. 1000 s).
BACKOFF_BASE = 0.05
BACKOFF_MAX = 30.0


class WorkQueue:
    """Keys waiting to be reconciled; a key already waiting is not queued twice."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._pending: set[Hashable] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    def add(self, key: Hashable) -> None:
        if key in self._pending:
            return
        self._pending.add(key)
        self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            self.add(key)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def get(self) -> Hashable:
        key = await self._queue.get()
        # Removed from the pending set before processing, so an event during the reconcile queues it again.
        self._pending.discard(key)
        return key

    def __len__(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()


class Loop:
    """One control loop. Subclasses override `on_event`, `initial_keys` and `reconcile`.

    `on_event` runs synchronously inside the store's commit, so it must only look at the event (and
    in-memory state) and enqueue keys: no store reads, no writes.
    """

    name = "loop"
    #: Every `resync_seconds` all keys from `initial_keys` are queued again (catches anything missed).
    resync_seconds = 60.0

    def __init__(self, service: ObjectService) -> None:
        self.service = service
        self.store = service.store
        self.catalog = service.catalog
        self.queue = WorkQueue()
        self.synced = False
        #: Long work started by reconcile (a volume copy) that outlives it, one per key; cancelled on stop.
        self.jobs: dict[Hashable, asyncio.Task[None]] = {}
        self._failures: dict[Hashable, int] = {}
        self._stopped = False

    # ---- to override -----------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Enqueue the keys an event concerns."""

    def initial_keys(self) -> Iterable[Hashable]:
        """Every key worth reconciling now (start and resync); may read the store."""
        return ()

    async def reconcile(self, key: Hashable) -> None:
        """Bring one key to its desired state; raise to be retried with back-off."""

    # ---- runner ----------------------------------------------------------------------------------

    def listener(self, event: Event) -> None:
        """The callback registered with the store; never raises into the writer."""
        if self._stopped:
            return
        try:
            self.on_event(event)
        except Exception:  # a bug here must not fail the client's write that triggered it
            log.exception("%s: handling event %s %s failed", self.name, event.type, event.key)

    def stop(self) -> None:
        self._stopped = True
        self.queue.close()
        for task in self.jobs.values():
            task.cancel()

    def start_job(self, key: Hashable, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` in the background as the job of `key`; the key is free again once it ends."""
        async def run() -> None:
            try:
                await work
            finally:
                # Freed before control returns to the loop, so the reconcile its last write triggers sees it free.
                if self.jobs.get(key) is task:
                    del self.jobs[key]

        task = asyncio.create_task(run(), name=name)
        self.jobs[key] = task

    def resume(self) -> None:
        self._stopped = False

    async def run(self) -> None:
        next_resync = 0.0
        while not self._stopped:
            now = time.monotonic()
            if now >= next_resync:
                self._resync()
                next_resync = now + self.resync_seconds
                self.synced = True
            try:
                key = await asyncio.wait_for(self.queue.get(), timeout=max(next_resync - now, 0.001))
            except TimeoutError:
                continue
            await self.process(key)

    def _resync(self) -> None:
        try:
            for key in self.initial_keys():
                self.queue.add(key)
        except Exception:
            log.exception("%s: listing keys for resync failed", self.name)

    async def process(self, key: Hashable) -> None:
        try:
            await self.reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)
            if isinstance(e, errors.APIError) and e.code == 409:
                # Someone wrote in between: expected under concurrency, retried quickly and quietly.
                log.debug("%s: conflict on %r, retrying in %.2fs", self.name, key, delay)
            else:
                log.warning("%s: reconciling %r failed (attempt %d), retrying in %.2fs", self.name, key,
                            failures, delay, exc_info=True)
            self.queue.add_after(key, delay)
        else:
            self._failures.pop(key, None)


# ---- helpers shared by the loops -------------------------------------------------------------------

NAMESPACES_KEY = "core/namespaces"


def meta(obj: dict[str, object]) -> dict[str, object]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def finalizers_of(obj: dict[str, object]) -> list[str]:
    value = meta(obj).get("finalizers")
    return [f for f in value if isinstance(f, str)] if isinstance(value, list) else []


def namespace_info(service: ObjectService) -> ResourceInfo:
    info = service.catalog.preferred("", "namespaces")
    assert info is not None, "the catalog always serves namespaces"
    return info


def builtin(service: ObjectService, group: str, plural: str) -> ResourceInfo:
    info = service.catalog.preferred(group, plural)
    assert info is not None, f"the catalog always serves {plural}"
    return info


def ignore_gone(e: errors.APIError) -> bool:
    """Whether an error means the object is already gone (or its namespace is going): nothing to do."""
    return e.code == 404 or (e.code == 403 and "being terminated" in e.message)


async def supervise(loop: Loop, family: str) -> None:
    """Keep a loop running: an escape from its runner (a bug) is logged and the runner restarted with back-off."""
    delay = 0.1
    while True:
        try:
            await loop.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s loop %s crashed; restarting in %.1fs", family, loop.name, delay)
            loop.synced = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
