"""Validation of custom resources against their CRD schema, with kube-apiserver's field paths and messages.

CEL rules (`x-kubernetes-validations`) are not evaluated.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pycdi.cluster.apiserver.errors import Cause
from pycdi.cluster.apiserver.schema._field import (
    Path,
    duplicate,
    go_float,
    go_json,
    invalid,
    not_supported,
    required,
    too_long,
    too_many,
    type_invalid,
)
from pycdi.cluster.apiserver.schema._formats import format_ok

from ..patching.jsonvalue import json_equal

Schema = dict[str, Any]
#: kube validates CRs with a nil field path, so errors about the root (and the allOf/anyOf/oneOf/not
#: summaries, which carry no name) print as `<nil>`.
NIL_FIELD = "<nil>"
_INT_OR_STRING = ["integer", "string"]


def validate(obj: Any, schema: dict[str, Any] | None) -> list[Cause]:
    """All causes that make `obj` invalid for `schema` (value validation, then list-set/map uniqueness)."""
    if not schema:
        return []
    errs: list[Cause] = []
    _validate(obj, schema, "", errs)
    _list_sets_and_maps(obj, schema, Path(), errs)
    return errs


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _field(name: str) -> str:
    return name or NIL_FIELD


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _number(limit: Any, data: Any) -> str:
    """A limit as kube-openapi prints it: as an integer when the data is one, else as Go's float %v."""
    if isinstance(data, int) and float(limit).is_integer():
        return str(int(limit))
    return go_float(float(limit))


def _types(s: Schema) -> list[str]:
    if s.get("x-kubernetes-int-or-string"):
        return _INT_OR_STRING
    stype = s.get("type")
    return [stype] if isinstance(stype, str) and stype else []


def _type_matches(value: Any, types: list[str]) -> bool:
    dt = _json_type(value)
    if dt in types:
        return True
    if dt == "number" and "integer" in types and float(value).is_integer():
        return True
    return dt == "integer" and "number" in types


def _validate(value: Any, s: Schema, path: str, errs: list[Cause]) -> None:
    types = _types(s)
    if value is None:
        if types and not s.get("nullable"):
            errs.append(
                type_invalid(
                    _field(path), "null", f'{path} in body must be of type {",".join(types)}: "null"'
                )
            )
        return
    if types and not _type_matches(value, types):
        dt = _json_type(value)
        errs.append(
            type_invalid(_field(path), dt, f'{path} in body must be of type {",".join(types)}: "{dt}"')
        )
        return
    _junctors(value, s, path, errs)
    if isinstance(value, str):
        _string(value, s, path, errs)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _numeric(value, s, path, errs)
    elif isinstance(value, list):
        _array(value, s, path, errs)
    enum = s.get("enum")
    if isinstance(enum, list) and enum and not any(json_equal(value, e) for e in enum):
        values = [e if isinstance(e, str) else go_json(e) for e in enum]
        errs.append(not_supported(_field(path), value, values))
    if isinstance(value, dict):
        _object(value, s, path, errs)


def _string(value: str, s: Schema, path: str, errs: list[Cause]) -> None:
    max_length = s.get("maxLength")
    if isinstance(max_length, int) and len(value) > max_length:
        errs.append(too_long(_field(path), max_length))
    min_length = s.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        errs.append(
            invalid(_field(path), value, f"{path} in body should be at least {min_length} chars long")
        )
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True  # an uncompilable pattern is refused when the CRD is created
        if not matched:
            errs.append(invalid(_field(path), value, f"{path} in body should match '{pattern}'"))
    fmt = s.get("format")
    if isinstance(fmt, str) and fmt and not format_ok(fmt, value):
        errs.append(
            type_invalid(_field(path), value, f"{path} in body must be of type {fmt}: {json.dumps(value)}")
        )


def _numeric(value: int | float, s: Schema, path: str, errs: list[Cause]) -> None:
    factor = s.get("multipleOf")
    if isinstance(factor, int | float) and factor > 0:
        quotient = value / factor
        if not float(quotient).is_integer():
            errs.append(
                invalid(
                    _field(path), value, f"{path} in body should be a multiple of {_number(factor, value)}"
                )
            )
    maximum = s.get("maximum")
    if isinstance(maximum, int | float):
        exclusive = bool(s.get("exclusiveMaximum"))
        if value > maximum or (exclusive and value == maximum):
            op = "less than" if exclusive else "less than or equal to"
            errs.append(
                invalid(_field(path), value, f"{path} in body should be {op} {_number(maximum, value)}")
            )
    minimum = s.get("minimum")
    if isinstance(minimum, int | float):
        exclusive = bool(s.get("exclusiveMinimum"))
        if value < minimum or (exclusive and value == minimum):
            op = "greater than" if exclusive else "greater than or equal to"
            errs.append(
                invalid(_field(path), value, f"{path} in body should be {op} {_number(minimum, value)}")
            )


def _array(value: list[Any], s: Schema, path: str, errs: list[Cause]) -> None:
    items = s.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", errs)
    min_items = s.get("minItems")
    if isinstance(min_items, int) and len(value) < min_items:
        errs.append(
            invalid(_field(path), len(value), f"{path} in body should have at least {min_items} items")
        )
    max_items = s.get("maxItems")
    if isinstance(max_items, int) and len(value) > max_items:
        errs.append(too_many(_field(path), len(value), max_items))
    if s.get("uniqueItems") and len({go_json(v) for v in value}) != len(value):
        errs.append(invalid(_field(path), "", f"{path} in body shouldn't contain duplicates"))


def _object(value: dict[str, Any], s: Schema, path: str, errs: list[Cause]) -> None:
    max_props = s.get("maxProperties")
    if isinstance(max_props, int) and len(value) > max_props:
        # kube-openapi hands the limit where the count belongs, so kube prints the limit as the count.
        errs.append(too_many(_field(path), max_props, None))
    min_props = s.get("minProperties")
    if isinstance(min_props, int) and len(value) < min_props:
        errs.append(
            invalid(_field(path), min_props, f"{path} in body should have at least {min_props} properties")
        )
    for key in s.get("required") or []:
        if key not in value:
            errs.append(required(_child(path, key)))
    props = s.get("properties") or {}
    additional = s.get("additionalProperties")
    for key, item in value.items():
        sub = props.get(key)
        if isinstance(sub, dict):
            _validate(item, sub, _child(path, key), errs)
        elif isinstance(additional, dict):
            _validate(item, additional, _child(path, key), errs)
        elif additional is False:
            errs.append(invalid(_field(path), key, f"{_child(path, key)} in body is a forbidden property"))


_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")


def _junctors(value: Any, s: Schema, path: str, errs: list[Cause]) -> None:
    if not any(k in s for k in _JUNCTORS):
        return  # the common case: skip the work below on every node of every object
    quoted = json.dumps(path)
    all_of = [x for x in s.get("allOf") or [] if isinstance(x, dict)]
    if all_of:
        results = [_sub(value, x, path) for x in all_of]
        for r in results:
            errs.extend(r)
        valid = sum(1 for r in results if not r)
        if valid != len(all_of):
            extra = ". Found none valid" if valid == 0 else ""
            errs.append(invalid(NIL_FIELD, "", f"{quoted} must validate all the schemas (allOf){extra}"))
    any_of = [x for x in s.get("anyOf") or [] if isinstance(x, dict)]
    if any_of:
        results = [_sub(value, x, path) for x in any_of]
        if all(results):
            errs.append(invalid(NIL_FIELD, "", f"{quoted} must validate at least one schema (anyOf)"))
            errs.extend(_fewest(results))
    one_of = [x for x in s.get("oneOf") or [] if isinstance(x, dict)]
    if one_of:
        results = [_sub(value, x, path) for x in one_of]
        valid = sum(1 for r in results if not r)
        if valid != 1:
            found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            errs.append(
                invalid(NIL_FIELD, "", f"{quoted} must validate one and only one schema (oneOf). {found}")
            )
            if valid == 0:
                errs.extend(_fewest(results))
    not_schema = s.get("not")
    if isinstance(not_schema, dict) and not _sub(value, not_schema, path):
        errs.append(invalid(NIL_FIELD, "", f"{quoted} must not validate the schema (not)"))


def _sub(value: Any, s: Schema, path: str) -> list[Cause]:
    errs: list[Cause] = []
    _validate(value, s, path, errs)
    return errs


def _scalar_key(value: Any) -> Any:
    """A hashable identity for a list element, as kube compares set members (compounds by their JSON)."""
    if isinstance(value, dict | list):
        return ("json", go_json(value))
    return (type(value).__name__, value)


def _list_sets_and_maps(value: Any, s: Schema, p: Path, errs: list[Cause]) -> None:
    if isinstance(value, dict):
        props = s.get("properties") or {}
        additional = s.get("additionalProperties")
        for key, item in value.items():
            if isinstance(additional, dict):
                _list_sets_and_maps(item, additional, p.key(key), errs)
            if isinstance(props.get(key), dict):
                _list_sets_and_maps(item, props[key], p.child(key), errs)
    elif isinstance(value, list):
        list_type = s.get("x-kubernetes-list-type")
        if list_type == "set":
            for i in _non_unique([_scalar_key(v) for v in value]):
                errs.append(duplicate(str(p.index(i)), value[i]))
        elif list_type == "map":
            _list_map(value, s.get("x-kubernetes-list-map-keys") or [], p, errs)
        items = s.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _list_sets_and_maps(item, items, p.index(i), errs)


def _non_unique(keys: list[Any]) -> list[int]:
    """Indices of the second occurrence of every repeated key (kube reports each duplicate once)."""
    seen: dict[Any, int] = {}
    out: list[int] = []
    for i, key in enumerate(keys):
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            out.append(i)
    return out


def _list_map(value: list[Any], keys: list[str], p: Path, errs: list[Cause]) -> None:
    for i, item in enumerate(value):
        if item is not None and not isinstance(item, dict):
            errs.append(invalid(str(p.index(i)), item, "must be an object for an array of list-type map"))
            return
    entries: list[dict[str, Any]] = []
    for item in value:
        entry = {k: item[k] for k in keys if isinstance(item, dict) and k in item}
        entries.append(entry)
    for i in _non_unique([_scalar_key(e) for e in entries]):
        errs.append(duplicate(str(p.index(i)), entries[i]))


def _fewest(results: list[list[Cause]]) -> list[Cause]:
    """The errors of the alternative that came closest (fewest errors, first on ties)."""
    best = results[0]
    for r in results[1:]:
        if len(r) < len(best):
            best = r
    return best
