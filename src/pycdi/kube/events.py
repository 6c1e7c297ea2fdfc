"""An event recorder writing core/v1 Events as client-go's: a repeat of the same event bumps count/lastTimestamp."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import OrderedDict
from typing import Any

import aiohttp

from .client import KubeClient
from .errors import APIStatusError, NotFound
from .resources import EVENTS

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
#: client-go's event correlator remembers this many distinct events.
CACHE_SIZE = 4096


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""), "name": meta.get("name", ""),
           "namespace": meta.get("namespace", ""), "uid": meta.get("uid", ""),
           "resourceVersion": meta.get("resourceVersion", "")}
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    """Records events for one component; failures are logged, never raised (events are best effort)."""

    def __init__(self, client: KubeClient, component: str, host: str = "") -> None:
        self._client = client
        self.source = {"component": component, **({"host": host} if host else {})}
        # key -> (namespace, event name, count) of the events this recorder wrote.
        self._seen: OrderedDict[tuple[str, ...], tuple[str, str, int]] = OrderedDict()

    async def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> dict[str, Any] | None:
        ref = object_reference(obj)
        # Events about cluster-scoped objects go to "default", as client-go's recorder puts them.
        namespace = ref.get("namespace") or "default"
        key = (ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""), ref.get("uid", ""),
               ref.get("apiVersion", ""), type_, reason, message, self.source["component"])
        now = _now()
        try:
            seen = self._seen.get(key)
            if seen is not None:
                ns, name, count = seen
                try:
                    updated = await self._client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": now}, ns,
                                                       patch_type="strategic")
                    self._remember(key, ns, name, count + 1)
                    return updated
                except NotFound:
                    pass  # expired or deleted: write a new one
            body = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{ref.get('name', 'unknown')}.{time.time_ns():x}", "namespace": namespace},
                "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                "source": self.source, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "reportingComponent": self.source["component"], "reportingInstance": self.source.get("host", ""),
            }
            created = await self._client.create(EVENTS, body, namespace)
            self._remember(key, namespace, created["metadata"]["name"], 1)
            return created
        except (APIStatusError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("could not record event %s/%s on %s %s: %s", type_, reason, ref.get("kind"),
                        ref.get("name"), e)
            return None

    def _remember(self, key: tuple[str, ...], namespace: str, name: str, count: int) -> None:
        self._seen[key] = (namespace, name, count)
        self._seen.move_to_end(key)
        while len(self._seen) > CACHE_SIZE:
            self._seen.popitem(last=False)

    async def normal(self, obj: dict[str, Any], reason: str, message: str) -> dict[str, Any] | None:
        return await self.event(obj, NORMAL, reason, message)

    async def warning(self, obj: dict[str, Any], reason: str, message: str) -> dict[str, Any] | None:
        return await self.event(obj, WARNING, reason, message)
