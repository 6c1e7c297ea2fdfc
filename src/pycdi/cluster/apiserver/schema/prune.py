"""Pruning of fields a CRD's structural schema does not know, reporting them as kube's unknown-field paths."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_META_FIELDS = frozenset({"apiVersion", "kind", "metadata"})
#: The fields of ObjectMeta: anything else under `metadata` is unknown (kube decodes metadata into the typed
#: struct, so unknown keys are dropped and, with fieldValidation Strict/Warn, reported).
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


def prune(obj: dict[str, Any], schema: dict[str, Any] | None, *, metadata: bool = True) -> list[str]:
    """Remove, in place, the fields of `obj` that `schema` does not specify; return their paths, sorted.

    Paths are kube's unknown-field paths (`spec.foo`, `spec.items[0].bar`, `metadata.foo`), ready for
    `unknown field "spec.foo"`. The root always keeps apiVersion, kind and metadata (as does every
    `x-kubernetes-embedded-resource`); with `metadata=True` unknown keys inside those metadata objects are
    removed and reported too.
    """
    root = dict(schema) if schema else {}
    root["x-kubernetes-embedded-resource"] = True
    pruned: list[str] = []
    _prune(obj, root, [], pruned, metadata)
    pruned.sort()
    return pruned


def _join(path: list[str], key: str) -> str:
    return ".".join([*path, key]) if path else key


def _child(path: list[str], key: str) -> list[str]:
    return [*path, key]


def _index(path: list[str], i: int) -> list[str]:
    # Indices attach to the previous segment: `items[0]`, not `items.[0]`.
    if not path:
        return [f"[{i}]"]
    return [*path[:-1], f"{path[-1]}[{i}]"]


def _additional(s: Schema) -> tuple[bool, Schema | None]:
    """Whether unknown keys are admitted by additionalProperties, and the schema they then follow."""
    additional = s.get("additionalProperties")
    if isinstance(additional, dict):
        return True, additional
    if additional is True:
        return True, None
    return False, None


def _prune_metadata(meta: Any, path: list[str], pruned: list[str]) -> None:
    if not isinstance(meta, dict):
        return
    for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
        del meta[key]
        pruned.append(_join(_child(path, "metadata"), key))


def _prune(x: Any, s: Schema | None, path: list[str], pruned: list[str], metadata: bool) -> None:
    if s is not None and s.get("x-kubernetes-preserve-unknown-fields"):
        _skip_prune(x, s, path, pruned, metadata)
        return
    if isinstance(x, dict):
        if s is None:
            for key in list(x):
                del x[key]
                pruned.append(_join(path, key))
            return
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        props = s.get("properties") or {}
        allowed, additional = _additional(s)
        for key in list(x):
            if embedded and key in _META_FIELDS:
                if key == "metadata" and metadata:
                    _prune_metadata(x[key], path, pruned)
                continue
            if key in props:
                _prune(x[key], props[key], _child(path, key), pruned, metadata)
            elif allowed:
                _prune(x[key], additional, _child(path, key), pruned, metadata)
            else:
                del x[key]
                pruned.append(_join(path, key))
    elif isinstance(x, list):
        items = s.get("items") if s is not None else None
        for i, value in enumerate(x):
            _prune(value, items if isinstance(items, dict) else None, _index(path, i), pruned, metadata)


def _skip_prune(x: Any, s: Schema, path: list[str], pruned: list[str], metadata: bool) -> None:
    """Under x-kubernetes-preserve-unknown-fields unknown keys stay; known ones are still pruned inside."""
    if isinstance(x, dict):
        embedded = bool(s.get("x-kubernetes-embedded-resource"))
        props = s.get("properties") or {}
        allowed, additional = _additional(s)
        for key in list(x):
            if embedded and key in _META_FIELDS:
                if key == "metadata" and metadata:
                    _prune_metadata(x[key], path, pruned)
                continue
            if key in props:
                _prune(x[key], props[key], _child(path, key), pruned, metadata)
            elif allowed and additional is not None:
                _prune(x[key], additional, _child(path, key), pruned, metadata)
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, value in enumerate(x):
                _skip_prune(value, items, _index(path, i), pruned, metadata)


def unknown_field_messages(paths: list[str]) -> list[str]:
    """The per-field texts kube uses, as Warning headers (Warn) or joined into the Strict error."""
    return [f'unknown field "{p}"' for p in paths]


def strict_decoding_message(kind: str, version: str, paths: list[str]) -> str:
    """The 400 BadRequest message for fieldValidation=Strict when unknown fields were found."""
    return (
        f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: '
        + ", ".join(unknown_field_messages(paths))
    )
