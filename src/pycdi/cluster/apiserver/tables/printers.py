"""The shared shape of a table printer: its column definitions and how it fills a row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Obj = dict[str, Any]
CellsFn = Callable[[Obj, datetime], list[Any]]
ConditionsFn = Callable[[Obj], list[Obj]]

# metav1.ObjectMeta{}.SwaggerDoc() texts that kube-apiserver puts in most column definitions.
NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATION_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this "
    "value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for "
    "lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#metadata"
)


def col(name: str, description: str = "", *, type_: str = "string", format_: str = "",
        priority: int = 0) -> Obj:
    """One `TableColumnDefinition`, with every field present as kube serialises it."""
    return {"name": name, "type": type_, "format": format_, "description": description,
            "priority": priority}


def name_col() -> Obj:
    return col("Name", NAME_DOC, format_="name")


def age_col() -> Obj:
    return col("Age", CREATION_DOC)


@dataclass(frozen=True)
class Printer:
    """Column definitions plus the function that makes one row's cells (always the wide form:
    kube-apiserver fills priority-1 cells too and kubectl hides them unless `-o wide`)."""

    columns: tuple[Obj, ...]
    cells: CellsFn
    conditions: ConditionsFn | None = field(default=None)


def meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def sub(obj: Any, *path: str) -> Any:
    """obj[path0][path1]...; None as soon as a step is missing or not a map."""
    cur = obj
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: sorted `k=v` pairs joined by commas, `<none>` when empty."""
    pairs = [f"{k}={v}" for k, v in sorted(as_dict(labels).items())]
    return ",".join(pairs) if pairs else "<none>"
