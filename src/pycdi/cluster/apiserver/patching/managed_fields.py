"""managedFields bookkeeping: who owns which fields, and how ordinary writes ("Update") change that."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pycdi.cluster.apiserver.patching.fieldpath import (
    GRANULAR_MAPS,
    FieldPath,
    ListMapKeys,
    decode,
    encode,
    field_set,
    get_path,
    is_missing,
    no_keys,
)
from pycdi.cluster.apiserver.patching.jsonvalue import json_equal


@dataclass
class Entry:
    """One managedFields entry, with its fieldsV1 decoded into a set of paths."""

    manager: str
    operation: str
    api_version: str
    time: str | None
    subresource: str = ""
    fields: set[FieldPath] = field(default_factory=set)

    def same_owner(self, other: Entry) -> bool:
        # kube's manager identity: an applier is the same whatever apiVersion it applied with;
        # an updater is one per apiVersion.
        if (self.manager, self.operation, self.subresource) != (other.manager, other.operation,
                                                                other.subresource):
            return False
        return self.operation == "Apply" or self.api_version == other.api_version

    def printed(self) -> str:
        """kube's printManager: `"name"`, plus ` using v1` for updaters."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                               "apiVersion": self.api_version}
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = encode(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def read_entries(obj: dict[str, Any] | None) -> list[Entry]:
    """Decode `metadata.managedFields`; malformed entries are dropped rather than failing a write."""
    if not obj:
        return []
    raw = (obj.get("metadata") or {}).get("managedFields")
    if not isinstance(raw, list):
        return []
    entries = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("manager", ""), str):
            continue
        entries.append(Entry(
            manager=item.get("manager", ""), operation=str(item.get("operation", "Update")),
            api_version=str(item.get("apiVersion", "")), time=item.get("time"),
            subresource=str(item.get("subresource", "")), fields=decode(item.get("fieldsV1"))))
    return entries


def write_entries(obj: dict[str, Any], entries: list[Entry]) -> None:
    """Store the non-empty entries, Apply first, then by time (kube's sort order)."""
    kept = [e for e in entries if e.fields]
    kept.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    meta = obj.setdefault("metadata", {})
    if kept:
        meta["managedFields"] = [e.to_json() for e in kept]
    else:
        meta.pop("managedFields", None)


@dataclass
class Comparison:
    added: set[FieldPath]
    modified: set[FieldPath]
    removed: set[FieldPath]

    def changed(self) -> set[FieldPath]:
        return self.added | self.modified


def compare(old: Any, new: Any, keys: ListMapKeys, *, mark_maps: bool = False) -> Comparison:
    """Which paths a write added, changed the value of, or removed."""
    before = field_set(old, keys) if old else set()
    after = field_set(new, keys)
    modified = set()
    for path in before & after:
        if path and path[-1][:2] in ("k:", "v:"):
            continue  # an item's identity is its key; its content is compared field by field
        if not json_equal(get_path(old, path), get_path(new, path)):
            modified.add(path)
    added, removed = after - before, before - after
    if mark_maps:
        added |= _granular_maps_absent_from(old, added)
        removed |= _granular_maps_absent_from(new, removed)
    return Comparison(added, modified, removed)


def _granular_maps_absent_from(other: Any, paths: set[FieldPath]) -> set[FieldPath]:
    """Maps like `labels` holding some of `paths` that `other` lacks (created/deleted whole)."""
    out = set()
    for path in paths:
        for i in range(1, len(path)):
            prefix = path[:i]
            if prefix[-1][2:] in GRANULAR_MAPS and prefix[-1].startswith("f:") and (
                    not other or is_missing(get_path(other, prefix))):
                out.add(prefix)
    return out


def find_entry(entries: list[Entry], probe: Entry) -> Entry | None:
    return next((e for e in entries if e.same_owner(probe)), None)


def update_managed_fields(old: dict[str, Any] | None, new: dict[str, Any], manager: str,
                          api_version: str, now: str, operation: str = "Update", subresource: str = "",
                          *, list_map_keys: ListMapKeys | None = None) -> None:
    """Record in `new["metadata"]["managedFields"]` what `manager` changed from `old` to `new`.

    As kube's Updater.Update: the manager gains every path it added or changed and loses those
    it removed; every other manager (appliers included) loses the paths this write changed or
    removed. Managers come from `new` if the client sent managedFields, else from `old`.
    """
    keys = list_map_keys or no_keys
    entries = read_entries(new) or read_entries(old)
    plain_old = _without_managed(old)
    plain_new = _without_managed(new)
    diff = compare(plain_old, plain_new, keys, mark_maps=True)
    probe = Entry(manager, operation, api_version, now, subresource)
    own = find_entry(entries, probe)
    for entry in entries:
        if entry is not own:
            entry.fields -= diff.changed() | diff.removed
    if own is None:
        own = probe
        entries.append(own)
    updated = (own.fields | diff.changed()) - diff.removed
    if updated != own.fields or own.time is None:
        own.time = now
    own.fields = updated
    own.api_version = api_version
    write_entries(new, entries)


def _without_managed(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    out = copy.copy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out
