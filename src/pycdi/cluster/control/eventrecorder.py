"""core/v1 Events from in-process controllers, aggregated per object, reason and message as client-go's recorder."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from ..apiserver import errors
from ..apiserver.service import ObjectService, WriteContext, now_rfc3339
from .loops import builtin

log = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"
#: Events about cluster-scoped objects (PVs, snapshot contents) go to "default", as client-go puts them.
CLUSTER_EVENTS_NAMESPACE = "default"


def object_ref(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "name": meta.get("name", ""), "uid": meta.get("uid", ""),
           "apiVersion": obj.get("apiVersion", ""), "resourceVersion": meta.get("resourceVersion", "")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return ref


class EventRecorder:
    """Writes Events for one component; a repeat of the same event bumps `count` and `lastTimestamp`."""

    def __init__(self, service: ObjectService, component: str) -> None:
        self.service = service
        self.component = component

    async def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record; failures are logged, never raised: an event is a courtesy, not part of the work."""
        try:
            await self._record(obj, type_, reason, message)
        except errors.APIError as e:
            log.debug("%s: event %s on %s not recorded: %s", self.component, reason,
                      (obj.get("metadata") or {}).get("name"), e.message)

    async def _record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        info = builtin(self.service, "", "events")
        ref = object_ref(obj)
        namespace = ref.get("namespace") or CLUSTER_EVENTS_NAMESPACE
        # A stable name per (object, reason, message): the aggregation key client-go's correlator uses.
        digest = hashlib.sha256(f"{ref['uid']}\0{type_}\0{reason}\0{message}".encode()).hexdigest()[:16]
        name = f"{ref['name']}.{digest}"
        now = now_rfc3339()
        for _ in range(3):
            existing = self.service.find(info, namespace, name)
            if existing is None:
                body = {
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                    "source": {"component": self.component}, "reportingComponent": self.component,
                    "reportingInstance": "", "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                }
                try:
                    await self.service.create(info, namespace, body, WriteContext())
                    return
                except errors.APIError as e:
                    if e.code != 409:
                        raise
                    continue
            existing["count"] = int(existing.get("count") or 1) + 1
            existing["lastTimestamp"] = now
            existing["involvedObject"] = ref
            try:
                await self.service.update(info, namespace, name, existing, WriteContext(), require_rv=True)
                return
            except errors.APIError as e:
                if e.code not in (404, 409):
                    raise
