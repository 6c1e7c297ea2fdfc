"""Tables for custom resources (additionalPrinterColumns) and for kinds without a printer."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from .age import UNKNOWN, created_at, human_duration, is_zero, parse_time
from .jsonpath import JSONPath, JSONPathError, compile_path
from .printers import CREATION_DOC, Obj, Printer, col, meta, name_col


def go_float(value: float) -> str:
    """A float as Go's fmt `%v` prints it: shortest digits, exponent form outside 1e-4 <= |x| < 1e6."""
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    exp10 = len(text) + exponent - 1
    prefix = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if exponent >= 0:
        return prefix + text + "0" * exponent
    point = len(text) + exponent
    if point > 0:
        return prefix + text[:point] + "." + text[point:]
    return prefix + "0." + "0" * -point + text


def _string_cell(value: Any) -> str:
    """How client-go's JSONPath PrintResults renders one value: maps and lists as compact JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def _typed_cell(column_type: str, value: Any, now: datetime) -> Any:
    """`cellForJSONValue`: the value when it fits the declared type, otherwise None (printed <none>)."""
    if value is None:
        return None
    if column_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
    elif column_type == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif column_type == "boolean":
        if isinstance(value, bool):
            return value
    elif column_type == "date":
        if isinstance(value, str):
            ts = parse_time(value)
            if ts is None:
                return "<invalid>"
            return UNKNOWN if is_zero(ts) else human_duration(now - ts)
    return None


_DEFAULT_CRD_COLUMNS: tuple[Obj, ...] = (
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": CREATION_DOC},
)


def crd_printer(printer_columns: tuple[Obj, ...] | list[Obj]) -> Printer:
    """The CRD table convertor: NAME then each additionalPrinterColumn (AGE alone when none are set)."""
    columns = tuple(printer_columns) or _DEFAULT_CRD_COLUMNS
    defs: list[Obj] = [name_col()]
    paths: list[tuple[str, JSONPath | None]] = []
    for c in columns:
        json_path = str(c.get("jsonPath", c.get("JSONPath", "")))
        try:
            path: JSONPath | None = compile_path(json_path)
        except JSONPathError:
            path = None  # kube falls back to a default convertor; an empty column is kinder here
        column_type = str(c.get("type", "string"))
        description = str(c.get("description") or "") or \
            f"Custom resource definition column (in JSONPath format): {json_path}"
        defs.append(col(str(c.get("name", "")), description, type_=column_type,
                        format_=str(c.get("format") or ""), priority=int(c.get("priority") or 0)))
        paths.append((column_type, path))

    def cells(obj: Obj, now: datetime) -> list[Any]:
        row: list[Any] = [str(meta(obj).get("name", ""))]
        for column_type, path in paths:
            results = path.find(obj) if path is not None else []
            if not results:
                row.append(None)
                continue
            # kube evaluates "simple" paths and keeps only the first value, even for `[*]`.
            value = results[0]
            if column_type == "string":
                row.append(_string_cell(value))
            else:
                row.append(_typed_cell(column_type, value, now))
        return row

    return Printer(tuple(defs), cells)


DEFAULT = Printer(
    (name_col(), col("Created At", CREATION_DOC, type_="date")),
    lambda obj, now: [str(meta(obj).get("name", "")), created_at(meta(obj).get("creationTimestamp"))],
)

__all__ = ["DEFAULT", "crd_printer", "go_float"]
