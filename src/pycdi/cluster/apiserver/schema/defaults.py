"""Defaulting of custom resources from their structural schema's `default` values, as kube does it."""

from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]


def apply_defaults(obj: dict[str, Any], schema: dict[str, Any] | None) -> None:
    """Fill, in place, missing fields of present objects with their schema defaults (deep copies).

    As kube-apiserver does (and documents): first nulls are dropped where the schema is not nullable and
    has no default, then a non-nullable null that has a default gets the default, then defaults apply
    recursively, including inside defaults just set. Run it after pruning.
    """
    if not schema:
        return
    _prune_nulls(obj, schema)
    _default(obj, schema)


def _non_nullable_null(value: Any, s: Schema | None) -> bool:
    return value is None and s is not None and not s.get("nullable", False)


def _additional(s: Schema) -> Schema | None:
    additional = s.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


def _prune_nulls(x: Any, s: Schema | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props = s.get("properties") or {}
        additional = _additional(s)
        for key in list(x):
            sub = props.get(key, additional)
            if not isinstance(sub, dict):
                continue
            if _non_nullable_null(x[key], sub) and "default" not in sub:
                del x[key]
            else:
                _prune_nulls(x[key], sub)
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for value in x:
                _prune_nulls(value, items)


def _default(x: Any, s: Schema | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props: dict[str, Any] = s.get("properties") or {}
        for key, prop in props.items():
            if not isinstance(prop, dict) or "default" not in prop:
                continue
            if key not in x or _non_nullable_null(x[key], prop):
                x[key] = copy.deepcopy(prop["default"])
        additional = _additional(s)
        for key in list(x):
            if key in props:
                sub = props[key]
                _default(x[key], sub if isinstance(sub, dict) else None)
            elif additional is not None:
                if _non_nullable_null(x[key], additional) and "default" in additional:
                    x[key] = copy.deepcopy(additional["default"])
                _default(x[key], additional)
    elif isinstance(x, list):
        items = s.get("items")
        if not isinstance(items, dict):
            return
        for i, value in enumerate(x):
            if _non_nullable_null(value, items) and "default" in items:
                x[i] = copy.deepcopy(items["default"])
            _default(x[i], items)
