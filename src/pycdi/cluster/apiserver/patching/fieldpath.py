"""Field paths and sets as structured-merge-diff sees them, and their FieldsV1 (`f:`/`k:`/`v:`) encoding."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from pycdi.cluster.apiserver.patching.jsonvalue import compact

# A path is a tuple of encoded elements: "f:name", 'k:{"name":"a"}', 'v:"x"', "i:0".
FieldPath = tuple[str, ...]
ListMapKeys = Callable[[tuple[str, ...]], list[str] | None]

# Fields kube never records in managedFields (its stripmeta list): identity and bookkeeping.
IGNORED: frozenset[FieldPath] = frozenset({
    ("f:apiVersion",), ("f:kind",),
    *(("f:metadata", "f:" + name) for name in (
        "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
        "managedFields", "selfLink", "clusterName")),
})

# Fields whose values are maps from arbitrary keys (not structs). kube's Update entries mark
# such a map with "." when the update created it; without schemas this list stands in.
GRANULAR_MAPS = frozenset({"labels", "annotations", "data", "binaryData", "stringData", "requests",
                           "limits", "capacity", "allocatable", "nodeSelector", "matchLabels",
                           "parameters"})

_MISSING: Any = object()


def no_keys(_: tuple[str, ...]) -> list[str] | None:
    return None


def item_element(item: Any, keys: list[str]) -> str | None:
    """The `k:`/`v:` element naming a list item, or None if the item cannot be keyed."""
    if not keys:
        return None if isinstance(item, dict | list) else "v:" + compact(item)
    if not isinstance(item, dict):
        return None
    present = {k: item[k] for k in keys if k in item}
    return "k:" + compact(present) if present else None


def field_set(obj: Any, keys: ListMapKeys) -> set[FieldPath]:
    """Every path structured-merge-diff would list for `obj` (leaves, list items, empty maps)."""
    out: set[FieldPath] = set()
    _collect(obj, (), (), keys, out)
    return {p for p in out if not _ignored(p)}


def _ignored(path: FieldPath) -> bool:
    return any(path[: len(ig)] == ig for ig in IGNORED)


def list_elements(items: list[Any], keys: list[str] | None) -> list[str] | None:
    """Elements naming each item, or None when the list must be treated as atomic."""
    if keys is None or not items:
        return None
    names = [item_element(item, keys) for item in items]
    if any(n is None for n in names) or len(set(names)) != len(names):
        return None
    return [n for n in names if n is not None]


def _collect(value: Any, path: FieldPath, names: tuple[str, ...], keys: ListMapKeys,
             out: set[FieldPath]) -> None:
    if isinstance(value, dict):
        if not value:
            out.add(path)
        for key, child in value.items():
            if child is None:
                continue
            _collect(child, path + ("f:" + key,), names + (key,), keys, out)
        return
    if isinstance(value, list):
        elements = list_elements(value, keys(names))
        if elements is None:
            out.add(path)
            return
        for element, item in zip(elements, value, strict=True):
            out.add(path + (element,))
            if element.startswith("k:"):
                _collect_item(item, path + (element,), names, keys, out)
        return
    out.add(path)


def _collect_item(item: dict[str, Any], path: FieldPath, names: tuple[str, ...], keys: ListMapKeys,
                  out: set[FieldPath]) -> None:
    for key, child in item.items():
        if child is not None:
            _collect(child, path + ("f:" + key,), names + (key,), keys, out)


def get_path(obj: Any, path: FieldPath) -> Any:
    """The value at `path`, or the module's missing sentinel (see `is_missing`)."""
    node = obj
    for element in path:
        node = _step(node, element)
        if node is _MISSING:
            break
    return node


def is_missing(value: Any) -> bool:
    return value is _MISSING


def _step(node: Any, element: str) -> Any:
    kind, text = element[:2], element[2:]
    if kind == "f:":
        return node.get(text, _MISSING) if isinstance(node, dict) else _MISSING
    if not isinstance(node, list):
        return _MISSING
    if kind == "i:":
        idx = int(text)
        return node[idx] if idx < len(node) else _MISSING
    wanted = json.loads(text)
    for item in node:
        if kind == "v:" and not isinstance(item, dict | list) and compact(item) == compact(wanted):
            return item
        if kind == "k:" and isinstance(item, dict) and all(
                k in item and compact(item[k]) == compact(v) for k, v in wanted.items()):
            return item
    return _MISSING


def remove_path(obj: Any, path: FieldPath) -> None:
    """Delete the field, list item or set value at `path` if it is there."""
    if not path:
        return
    parent = get_path(obj, path[:-1])
    element = path[-1]
    if element.startswith("f:") and isinstance(parent, dict):
        parent.pop(element[2:], None)
    elif isinstance(parent, list):
        target = _step(parent, element)
        if target is not _MISSING:
            for i, item in enumerate(parent):
                if item is target:
                    del parent[i]
                    break


def path_string(path: FieldPath) -> str:
    """kube's printed form: `.spec.containers[name="a"].image`, `.metadata.finalizers[="x"]`."""
    parts = []
    for element in path:
        kind, text = element[:2], element[2:]
        if kind == "f:":
            parts.append("." + text)
        elif kind == "k:":
            fields = json.loads(text)
            parts.append("[" + ",".join(f"{k}={compact(v)}" for k, v in sorted(fields.items())) + "]")
        elif kind == "v:":
            parts.append("[=" + text + "]")
        else:
            parts.append("[" + text + "]")
    return "".join(parts)


def encode(paths: Iterable[FieldPath]) -> dict[str, Any]:
    """FieldsV1: a tree of elements; `{}` marks a member leaf, "." a member that has children."""
    tree: dict[str, Any] = {}
    members = set(paths)
    for path in members:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    for path in members:
        node = tree
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted(tree)


def _sorted(tree: dict[str, Any]) -> dict[str, Any]:
    # "." first, then the elements in order, as kube serialises them.
    return {k: _sorted(tree[k]) for k in sorted(tree, key=lambda k: (k != ".", k))}


def decode(tree: Any, prefix: FieldPath = ()) -> set[FieldPath]:
    """The set of paths a FieldsV1 tree names."""
    out: set[FieldPath] = set()
    if not isinstance(tree, dict):
        return out
    for element, child in tree.items():
        if element == ".":
            out.add(prefix)
        elif isinstance(child, dict) and not child:
            out.add(prefix + (element,))
        else:
            out |= decode(child, prefix + (element,))
    return out


def owned_at_or_below(paths: set[FieldPath], path: FieldPath) -> bool:
    n = len(path)
    return any(p[:n] == path for p in paths)
