"""The informer cache: one resource listed and watched into memory, indexed, with handlers on every change."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ...kube.client import KubeClient
from ...kube.resources import Resource
from ...kube.watch import Backoff, Relist, WatchEvent, list_watch

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects
#: A change: (event type ADDED | MODIFIED | DELETED, the old object or None, the new object or None).
Handler = Callable[[str, dict[str, Any] | None, dict[str, Any] | None], None]
IndexFunc = Callable[[dict[str, Any]], list[str]]

NAMESPACE_INDEX = "namespace"


def object_key(obj: dict[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class Informer:
    """Objects of one resource (optionally one namespace), kept current by list + watch.

    Handlers run synchronously in the informer's task, in event order; they should only enqueue work.
    Objects handed out are the cache's own: callers must copy before changing them.
    """

    def __init__(self, client: KubeClient, resource: Resource, namespace: str | None = None, *,
                 label_selector: str | None = None, backoff: Backoff | None = None,
                 watch_timeout: int = 300) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self._backoff = backoff
        self._watch_timeout = watch_timeout
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._index_funcs: dict[str, IndexFunc] = {NAMESPACE_INDEX: lambda o: [object_key(o)[0]]}
        self._indexes: dict[str, dict[str, set[ObjectKey]]] = {NAMESPACE_INDEX: {}}
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.resource_version = ""

    # ---- configuration -------------------------------------------------------------------------------

    def add_index(self, name: str, func: IndexFunc) -> None:
        self._index_funcs[name] = func
        index: dict[str, set[ObjectKey]] = {}
        for key, obj in self._objects.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    def add_handler(self, handler: Handler) -> None:
        """Also replays the objects already cached as ADDED, so a late handler misses nothing."""
        self._handlers.append(handler)
        for obj in list(self._objects.values()):
            handler("ADDED", None, obj)

    # ---- reads ---------------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def get(self, name: str, namespace: str = "") -> dict[str, Any] | None:
        return self._objects.get((namespace, name))

    def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace is None:
            return list(self._objects.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, index: str, value: str) -> builtins.list[dict[str, Any]]:
        keys = self._indexes[index].get(value, set())
        return [self._objects[k] for k in sorted(keys)]

    # ---- running -------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.resource.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async for item in list_watch(self.client, self.resource, self.namespace, label_selector=self.label_selector,
                                     timeout_seconds=self._watch_timeout, backoff=self._backoff):
            try:
                if isinstance(item, Relist):
                    self._replace(item.items)
                    self.resource_version = item.resource_version
                    self._synced.set()
                else:
                    self._apply(item)
            except Exception:  # a handler's bug must not stop the cache
                log.exception("informer %s: handling a change failed", self.resource.plural)

    def _replace(self, items: builtins.list[dict[str, Any]]) -> None:
        """A (re)list: diff it against the cache, so handlers see only what changed while we were away."""
        fresh = {object_key(o): o for o in items}
        for key in [k for k in self._objects if k not in fresh]:
            old = self._delete(key)
            self._dispatch("DELETED", old, None)
        for key, obj in fresh.items():
            previous = self._objects.get(key)
            if previous is None:
                self._store(key, obj)
                self._dispatch("ADDED", None, obj)
            elif _version(previous) != _version(obj):
                self._store(key, obj)
                self._dispatch("MODIFIED", previous, obj)

    def _apply(self, event: WatchEvent) -> None:
        key = object_key(event.object)
        old = self._objects.get(key)
        if event.type == "DELETED":
            if old is not None:
                self._delete(key)
            self._dispatch("DELETED", old, event.object)
            return
        self._store(key, event.object)
        self._dispatch("ADDED" if old is None else "MODIFIED", old, event.object)

    def _store(self, key: ObjectKey, obj: dict[str, Any]) -> None:
        if key in self._objects:
            self._unindex(key)
        self._objects[key] = obj
        for name, func in self._index_funcs.items():
            for value in func(obj):
                self._indexes[name].setdefault(value, set()).add(key)

    def _delete(self, key: ObjectKey) -> dict[str, Any]:
        self._unindex(key)
        return self._objects.pop(key)

    def _unindex(self, key: ObjectKey) -> None:
        obj = self._objects[key]
        for name, func in self._index_funcs.items():
            for value in func(obj):
                keys = self._indexes[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indexes[name][value]

    def _dispatch(self, kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        for handler in self._handlers:
            try:
                handler(kind, old, new)
            except Exception:
                log.exception("informer %s: a %s handler failed", self.resource.plural, kind)


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))
