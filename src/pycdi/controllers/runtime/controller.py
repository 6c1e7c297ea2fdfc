"""A controller: informers feed a rate-limited queue of requests, N workers reconcile them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from ...kube.errors import APIStatusError, Conflict
from .cache import Informer
from .queue import RateLimitingQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Request:
    """What to reconcile: one object's name (and namespace, "" when cluster-scoped)."""

    name: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class Result:
    """A reconcile's outcome: done, or come back after `requeue_after` seconds (or soon, with `requeue`)."""

    requeue: bool = False
    requeue_after: float | None = None


class Reconciler(Protocol):
    async def reconcile(self, request: Request) -> Result: ...


#: From a changed object to the requests it should trigger.
Mapper = Callable[[dict[str, Any]], Iterable[Request]]


def own_request(obj: dict[str, Any]) -> list[Request]:
    meta = obj.get("metadata") or {}
    return [Request(meta.get("name", ""), meta.get("namespace") or "")]


class Controller:
    """Reconciles each request with at most one worker at a time; failures back off per request and give
    up after `max_retries` (logged with the last error), until the next change to the object re-queues it."""

    def __init__(self, name: str, reconciler: Reconciler, *, workers: int = 1, max_retries: int = 10,
                 queue: RateLimitingQueue[Request] | None = None) -> None:
        self.name = name
        self.reconciler = reconciler
        self.workers = workers
        self.max_retries = max_retries
        self.queue: RateLimitingQueue[Request] = queue or RateLimitingQueue()
        self.informers: list[Informer] = []
        self._startup: list[Request] = []
        self._initial: set[Request] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def watch(self, informer: Informer, mapper: Mapper = own_request) -> None:
        """Enqueue `mapper(object)` on every add, update and delete of the informer's objects."""
        if informer not in self.informers:
            self.informers.append(informer)

        def handler(_kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
            requests: set[Request] = set()
            for obj in (old, new):
                if obj is not None:
                    requests.update(mapper(obj))
            for request in requests:
                self.queue.add(request)

        informer.add_handler(handler)

    def enqueue_on_start(self, request: Request) -> None:
        """Reconcile this request once the caches have synced even if no object names it (a singleton)."""
        self._startup.append(request)

    @property
    def ready(self) -> bool:
        """Caches synced and every request queued by the initial lists handled once."""
        return self._initial is not None and not self._initial

    async def start(self) -> None:
        await asyncio.gather(*(i.wait_synced() for i in self.informers))
        for request in self._startup:
            self.queue.add(request)
        self._initial = self.queue.pending()
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}"))

    async def stop(self) -> None:
        self.queue.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _worker(self) -> None:
        while True:
            request = await self.queue.get()
            if request is None:
                return
            try:
                await self._process(request)
            finally:
                self.queue.done(request)
                if self._initial:
                    self._initial.discard(request)

    async def _process(self, request: Request) -> None:
        try:
            result = await self.reconciler.reconcile(request)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._failed(request, e)
            return
        self.queue.forget(request)
        if result.requeue_after is not None and result.requeue_after > 0:
            self.queue.add_after(request, result.requeue_after)
        elif result.requeue:
            self.queue.add_rate_limited(request)

    def _failed(self, request: Request, error: Exception) -> None:
        retries = self.queue.num_requeues(request)
        if retries >= self.max_retries:
            self.queue.forget(request)
            log.error("%s: giving up on %s after %d retries: %s", self.name, request, retries, error)
            return
        delay = self.queue.add_rate_limited(request)
        if isinstance(error, Conflict):
            # A stale read: the cache will catch up; not worth more than a debug line.
            log.debug("%s: %s conflicted; retrying in %.3fs", self.name, request, delay)
        elif isinstance(error, APIStatusError | aiohttp.ClientError | OSError):
            log.warning("%s: reconciling %s failed: %s; retrying in %.3fs", self.name, request, error, delay)
        else:
            log.exception("%s: reconciling %s failed; retrying in %.3fs", self.name, request, delay,
                          exc_info=error)
