"""Server-side apply (apply-patch+yaml): merge the applied config, track ownership, detect conflicts."""

from __future__ import annotations

import copy
from typing import Any

from pycdi.cluster.apiserver.errors import APIError
from pycdi.cluster.apiserver.patching.fieldpath import (
    FieldPath,
    ListMapKeys,
    field_set,
    item_element,
    list_elements,
    no_keys,
    owned_at_or_below,
    path_string,
    remove_path,
)
from pycdi.cluster.apiserver.patching.managed_fields import (
    Entry,
    compare,
    find_entry,
    read_entries,
    write_entries,
)
from pycdi.cluster.apiserver.patching.patch_errors import bad_request

# Metadata a client may send but that is the server's to set; never merged from an applied config.
_SERVER_META = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")


class ApplyConflict(Exception):
    """Apply would change fields other managers own (409 unless force)."""

    def __init__(self, conflicts: list[tuple[str, str]], printed: list[str] | None = None) -> None:
        self.conflicts = conflicts
        # kube's rendering of each conflicting manager (`"m"`, or `"m" using v1` for updaters).
        self.printed = printed if printed is not None else [f'"{m}"' for m, _ in conflicts]
        super().__init__(self.message())

    def causes(self) -> list[dict[str, str]]:
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": path}
                for who, (_, path) in zip(self.printed, self.conflicts, strict=True)]

    def message(self) -> str:
        if len(self.conflicts) == 1:
            return f"Apply failed with 1 conflict: conflict with {self.printed[0]}: {self.conflicts[0][1]}"
        by_manager: dict[str, list[str]] = {}
        for who, (_, path) in zip(self.printed, self.conflicts, strict=True):
            by_manager.setdefault(who, []).append(path)
        lines = []
        for who in sorted(by_manager):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {path}" for path in by_manager[who])
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def api_error(self) -> APIError:
        return APIError(409, "Conflict", self.message(), {"causes": self.causes()})


def server_side_apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, force: bool,
                      api_version: str, *, list_map_keys: ListMapKeys | None = None, now: str
                      ) -> dict[str, Any]:
    """Merge `applied` into `live` (None: create) as `manager`, returning the new object.

    Follows structured-merge-diff's Updater.Apply: the applier's set becomes exactly the
    fields of its config; fields it applied last time and no longer applies are pruned unless
    someone else owns them; changing a field another manager owns is a conflict unless
    `force`, which moves the ownership instead. `list_map_keys(path)` names the keys of an
    associative list (path = field names, list positions skipped), [] for a set, None atomic.
    """
    if not isinstance(applied, dict):
        raise bad_request("the applied configuration must be an object")
    keys = list_map_keys or no_keys
    base: dict[str, Any] = copy.deepcopy(live) if live else {}
    entries = read_entries(base)
    base.get("metadata", {}).pop("managedFields", None)
    if live and not entries:
        # kube credits the fields of an object nobody tracked yet to "before-first-apply",
        # so the first applier conflicts on values it would change.
        entries = [Entry("before-first-apply", "Update", api_version, now, "", field_set(base, keys))]
    config = _config(applied)
    applied_set = field_set(config, keys)
    probe = Entry(manager, "Apply", api_version, now)
    own = find_entry(entries, probe)
    last_set = own.fields if own else set()
    merged: dict[str, Any] = _merge(base, config, (), keys)
    others = [e for e in entries if e is not own]
    keep = applied_set.union(*(e.fields for e in others))
    # Parents first: once a list item's key field is gone the item could no longer be found.
    for path in sorted(last_set - applied_set, key=len):
        if not owned_at_or_below(keep, path):
            remove_path(merged, path)
    diff = compare(base, merged, keys)
    changed = diff.changed()
    found: list[tuple[Entry, FieldPath]] = []
    for entry in others:
        for path in sorted(entry.fields & changed):
            found.append((entry, path))
    if found and not force:
        found.sort(key=lambda c: (c[0].printed(), path_string(c[1])))
        raise ApplyConflict([(e.manager, path_string(p)) for e, p in found], [e.printed() for e, _ in found])
    for entry in others:
        entry.fields -= changed | diff.removed
    if own is None:
        own = probe
        entries.append(own)
    own.fields, own.time, own.api_version = applied_set, now, api_version
    write_entries(merged, entries)
    return merged


def _config(applied: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(applied)
    meta = config.get("metadata")
    if isinstance(meta, dict):
        for name in _SERVER_META:
            meta.pop(name, None)
    return config


def _merge(live: Any, config: Any, names: tuple[str, ...], keys: ListMapKeys) -> Any:
    """Structured merge of the applied value over the live one."""
    if isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for key, value in config.items():
            if value is None:
                out.pop(key, None)  # a null in an applied config leaves the field unset
            else:
                out[key] = _merge(live.get(key), value, names + (key,), keys)
        return out
    if isinstance(live, list) and isinstance(config, list):
        return _merge_list(live, config, names, keys)
    if isinstance(config, dict):
        return _merge({}, config, names, keys)
    return copy.deepcopy(config)


def _merge_list(live: list[Any], config: list[Any], names: tuple[str, ...], keys: ListMapKeys) -> Any:
    list_keys = keys(names)
    config_names = list_elements(config, list_keys)
    live_names = list_elements(live, list_keys) if live else []
    if list_keys is None or config_names is None or live_names is None:
        return copy.deepcopy(config)  # atomic: the applier's list wins whole
    out = list(live)
    for item in config:
        element = item_element(item, list_keys)
        if element in live_names:
            idx = live_names.index(element)
            out[idx] = _merge(live[idx], item, names, keys)
        else:
            out.append(_merge(None, item, names, keys))
    return out
