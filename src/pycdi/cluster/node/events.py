"""Events from the scheduler and the node agent, counted up when the same one repeats (as kube's recorder)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from ..apiserver import errors
from ..apiserver.service import ObjectService, WriteContext
from .status import now

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class Recorder:
    """Writes core/v1 Events about objects; an identical repeat bumps `count` and `lastTimestamp`."""

    def __init__(self, service: ObjectService, component: str, host: str = "") -> None:
        self.service = service
        self.component = component
        self.host = host
        info = service.catalog.preferred("", "events")
        assert info is not None, "the catalog always serves events"
        self.info = info
        self._seen: dict[tuple[str, str, str, str, str], str] = {}

    async def record(self, obj: Obj, event_type: str, reason: str, message: str, field_path: str = "") -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        key = (str(meta.get("uid")), field_path, event_type, reason, message)
        try:
            name = self._seen.get(key)
            if name is not None:
                existing = self.service.find(self.info, namespace, name)
                if existing is not None:
                    existing["count"] = int(existing.get("count") or 1) + 1
                    existing["lastTimestamp"] = now()
                    await self.service.update(self.info, namespace, name, existing, WriteContext())
                    return
            involved: Obj = {"kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""),
                             "name": meta.get("name", ""), "uid": meta.get("uid", ""),
                             "apiVersion": obj.get("apiVersion", ""),
                             "resourceVersion": meta.get("resourceVersion", "")}
            if field_path:
                involved["fieldPath"] = field_path
            source: Obj = {"component": self.component}
            if self.host:
                source["host"] = self.host
            stamp = now()
            # kube names events <object>.<hex of the time>; a random suffix is as unique here.
            name = f"{meta.get('name', 'object')}.{secrets.token_hex(8)}"
            event: Obj = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": involved, "reason": reason, "message": message, "source": source,
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": event_type,
                "eventTime": None, "reportingComponent": self.component, "reportingInstance": self.host,
            }
            await self.service.create(self.info, namespace, event, WriteContext())
            self._seen[key] = name
        except errors.APIError as e:
            # Events are best effort, as in kube: a failure (namespace going away...) is only logged.
            log.debug("event %s for %s/%s not recorded: %s", reason, namespace, meta.get("name"), e.message)

    def forget(self, uid: str) -> None:
        """Drop the repeat counters of an object that is gone."""
        for key in [k for k in self._seen if k[0] == uid]:
            del self._seen[key]
