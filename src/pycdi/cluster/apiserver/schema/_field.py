"""Field errors rendered as kube-apiserver renders them (`field.Error.ErrorBody`), as Status causes."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from pycdi.cluster.apiserver.errors import Cause


def go_float(value: float) -> str:
    """Go's `%v` of a float64: shortest digits, exponent form when the exponent is < -4 or >= 6."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    dec = Decimal(repr(value)).normalize()
    sign, digits, exponent = dec.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(str(d) for d in digits)
    exp10 = len(digits) + exponent - 1
    # strconv's shortest 'g' switches to %e when exp < -4 || exp >= 6 (so 1e6 prints as 1e+06).
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    else:
        out = format(dec, "f")
    return ("-" if sign else "") + out


def go_json(value: Any) -> str:
    """`encoding/json.Marshal`: sorted keys, no spaces, integral floats without a fraction."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{go_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def render_value(value: Any) -> str:
    """A bad value as `ErrorBody` prints it: numbers and bools plain, strings quoted, the rest as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return go_json(value)


def _cause(reason: str, field: str, message: str) -> Cause:
    return {"reason": reason, "message": message, "field": field}


def required(field: str, detail: str = "") -> Cause:
    return _cause("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else ""))


def forbidden(field: str, detail: str) -> Cause:
    return _cause("FieldValueForbidden", field, "Forbidden" + (f": {detail}" if detail else ""))


def invalid(field: str, value: Any, detail: str) -> Cause:
    return _cause(
        "FieldValueInvalid",
        field,
        f"Invalid value: {render_value(value)}" + (f": {detail}" if detail else ""),
    )


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    return _cause("FieldValueTypeInvalid", field, f"Invalid value: {render_value(value)}: {detail}")


def not_supported(field: str, value: Any, supported: list[str]) -> Cause:
    message = f"Unsupported value: {render_value(value)}"
    if supported:
        message += ": supported values: " + ", ".join(json.dumps(v, ensure_ascii=False) for v in supported)
    return _cause("FieldValueNotSupported", field, message)


def duplicate(field: str, value: Any) -> Cause:
    return _cause("FieldValueDuplicate", field, f"Duplicate value: {render_value(value)}")


def too_long(field: str, max_length: int) -> Cause:
    unit = "byte" if max_length == 1 else "bytes"
    return _cause("FieldValueTooLong", field, f"Too long: may not be more than {max_length} {unit}")


def too_many(field: str, actual: int | None, maximum: int | None) -> Cause:
    if maximum is not None and maximum >= 0:
        detail = f"must have at most {maximum} {'item' if maximum == 1 else 'items'}"
    else:
        detail = "has too many items"
    head = "Too many" if actual is None else f"Too many: {actual}"
    return _cause("FieldValueTooMany", field, f"{head}: {detail}")


class Path:
    """A `field.Path` builder: `.child("x")` -> `a.x`, `.index(0)` -> `a[0]`, `.key("k")` -> `a[k]`."""

    __slots__ = ("text",)

    def __init__(self, text: str = "") -> None:
        self.text = text

    def child(self, name: str) -> Path:
        return Path(f"{self.text}.{name}" if self.text else name)

    def index(self, i: int) -> Path:
        return Path(f"{self.text}[{i}]")

    def key(self, k: str) -> Path:
        return Path(f"{self.text}[{k}]")

    def __str__(self) -> str:
        return self.text
