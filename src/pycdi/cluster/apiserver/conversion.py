"""Conversion between a served version and the stored form, for resources stored under another group.

kube-apiserver keeps events.k8s.io/v1 Events and core/v1 Events in one storage: an Event written through
either API is read through both. The stored form here is core/v1; events.k8s.io/v1 renames some fields.
"""

from __future__ import annotations

from typing import Any

from .resources import ResourceInfo

Obj = dict[str, Any]

#: events.k8s.io/v1 field -> core/v1 field (the others are shared).
_EVENTS_V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
_CORE_TO_EVENTS_V1 = {core: new for new, core in _EVENTS_V1_TO_CORE.items()}


def _converted(info: ResourceInfo) -> bool:
    return info.group == "events.k8s.io"


def _rename(obj: Obj, table: dict[str, str]) -> Obj:
    return {table.get(k, k): v for k, v in obj.items()}


def to_served(info: ResourceInfo, obj: Obj) -> Obj:
    """The stored object as `info`'s version shows it (in place where no field changes name)."""
    if _converted(info):
        obj = _rename(obj, _CORE_TO_EVENTS_V1)
    obj["apiVersion"], obj["kind"] = info.api_version, info.kind
    return obj


def to_stored(info: ResourceInfo, obj: Obj) -> Obj:
    """An object of `info`'s version in the form it is stored in."""
    if not _converted(info):
        return obj
    stored = _rename(obj, _EVENTS_V1_TO_CORE)
    stored["apiVersion"], stored["kind"] = "v1", "Event"
    return stored
