"""Server-side `meta.k8s.io` Tables, so `kubectl get` prints the same columns as against kube-apiserver."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import bad_request
from ..mediatypes import media_ranges
from ..resources import ResourceInfo
from . import core, storage
from .custom import DEFAULT, crd_printer
from .pods import PODS
from .printers import Obj, Printer

__all__ = ["INCLUDE_OBJECT_VALUES", "parse_include_object", "printer_for", "render_table", "wants_table"]

INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")

# Printers by (group, plural), as kube-apiserver registers its TableConvertors. Anything not listed
# (roles, clusterroles, customresourcedefinitions...) gets the default NAME / CREATED AT table.
_PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "pods"): PODS,
    ("", "persistentvolumeclaims"): storage.PVCS,
    ("", "persistentvolumes"): storage.PVS,
    ("storage.k8s.io", "storageclasses"): storage.STORAGECLASSES,
    ("", "namespaces"): core.NAMESPACES,
    ("", "nodes"): core.NODES,
    ("", "events"): core.EVENTS,
    ("events.k8s.io", "events"): core.EVENTS,
    ("", "configmaps"): core.CONFIGMAPS,
    ("", "secrets"): core.SECRETS,
    ("", "serviceaccounts"): core.SERVICEACCOUNTS,
    ("", "services"): core.SERVICES,
    ("", "endpoints"): core.ENDPOINTS,
    ("coordination.k8s.io", "leases"): core.LEASES,
    ("rbac.authorization.k8s.io", "rolebindings"): core.ROLEBINDINGS,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): core.CLUSTERROLEBINDINGS,
}

_TABLE_VERSIONS = ("v1", "v1beta1")


def printer_for(info: ResourceInfo) -> Printer:
    """The printer kube would use: the CRD convertor for custom resources, else a built-in or default."""
    if info.custom:
        return crd_printer(info.printer_columns)
    return _PRINTERS.get((info.group, info.plural), DEFAULT)


def _row_object(info: ResourceInfo, obj: Obj, include_object: str, table_version: str) -> Any:
    if include_object == "None":
        return None
    if include_object == "Object":
        full = dict(obj)
        full.setdefault("apiVersion", info.api_version)
        full.setdefault("kind", info.kind)
        return full
    # --show-labels and -L read row.object.metadata, so the whole metadata travels.
    metadata = obj.get("metadata")
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{table_version}",
            "metadata": metadata if isinstance(metadata, dict) else {}}


def render_table(info: ResourceInfo, objects: list[dict[str, Any]], *, include_object: str = "Metadata",
                 list_metadata: dict[str, Any] | None = None, now: datetime | None = None,
                 table_version: str = "v1") -> dict[str, Any]:
    """A `meta.k8s.io` Table of `objects` (a list's items, or the one object of a GET).

    `list_metadata` carries resourceVersion / continue / remainingItemCount; for a single GET pass the
    object's resourceVersion, as kube does. Empty values are left out, as Go's omitempty does.
    """
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise bad_request(f'unrecognized includeObject value: "{include_object}"')
    when = now or datetime.now(UTC)
    printer = printer_for(info)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.cells(obj, when)}
        if printer.conditions is not None:
            conditions = printer.conditions(obj)
            if conditions:
                row["conditions"] = conditions
        row["object"] = _row_object(info, obj, include_object, table_version)
        rows.append(row)
    metadata: dict[str, Any] = {}
    for key in ("resourceVersion", "continue", "remainingItemCount"):
        value = (list_metadata or {}).get(key)
        if value not in (None, ""):
            metadata[key] = value
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": metadata,
        "columnDefinitions": [dict(c) for c in printer.columns],
        "rows": rows,
    }


def wants_table(accept: str | None) -> str | None:
    """"v1" or "v1beta1" when the Accept header's most preferred servable range is a JSON Table.

    Ranges we cannot serve (protobuf, other `as=` kinds, unknown Table versions) are skipped, as
    kube's negotiation does; a plain JSON range ahead of any Table range means no Table.
    """
    if not accept:
        return None
    for r in media_ranges(accept):
        if not r.is_json:
            continue
        kind = r.params.get("as")
        if kind is None:
            return None
        if kind == "Table" and r.params.get("g") == "meta.k8s.io" and r.params.get("v") in _TABLE_VERSIONS:
            return r.params["v"]
    return None


def parse_include_object(query_value: str | None) -> str:
    """The `includeObject` query parameter: None, Metadata (the default) or Object; else 400."""
    if query_value is None or query_value == "":
        return "Metadata"
    if query_value not in INCLUDE_OBJECT_VALUES:
        raise bad_request(f'unrecognized includeObject value: "{query_value}"')
    return query_value
