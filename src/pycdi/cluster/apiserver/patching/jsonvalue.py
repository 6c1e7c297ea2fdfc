"""JSON value helpers shared by the patch engines: equality with JSON semantics, compact encoding."""

from __future__ import annotations

import json
from typing import Any


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 == 1.0, but True is not 1 (Python's `==` says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b):
        return False
    return bool(a == b)


def compact(value: Any) -> str:
    """Go-style compact JSON (sorted keys) used inside FieldsV1 `k:`/`v:` path elements."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
