"""Whether a CRD schema is structural (kube's rules and messages), and lookups into such schemas."""

from __future__ import annotations

import re
from typing import Any

from pycdi.cluster.apiserver.errors import Cause
from pycdi.cluster.apiserver.schema._field import Path, forbidden, invalid, not_supported, required

Schema = dict[str, Any]

_ROOT, _ITEM, _FIELD = 0, 1, 2
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
_JUNCTORS = ("allOf", "anyOf", "oneOf")
# Keys that a schema under allOf/anyOf/oneOf/not may not carry, with kube's detail for each.
_NESTED_FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("type", "must be empty to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("externalDocs", "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)


def _dict(value: Any) -> Schema | None:
    return value if isinstance(value, dict) else None


def _props(s: Schema) -> dict[str, Schema]:
    props = s.get("properties")
    return {k: v for k, v in props.items() if isinstance(v, dict)} if isinstance(props, dict) else {}


def check_structural(
    schema: dict[str, Any], path: str = "spec.versions[0].schema.openAPIV3Schema"
) -> list[Cause]:
    """Causes that make `schema` non-structural or unacceptable as a CRD schema, sorted as kube does."""
    root = Path(path)
    errs: list[Cause] = []
    _invariants(schema, _ROOT, root, errs)
    _completeness(schema, schema, root, root, errs)
    _crd_rules(schema, root, errs)
    errs.sort(key=lambda c: f"{c['field']}: {c['message']}")
    return errs


def _invariants(s: Schema, lvl: int, p: Path, errs: list[Cause]) -> None:
    stype = s.get("type") or ""
    items = _dict(s.get("items"))
    if stype == "array" and items is None:
        errs.append(required(str(p.child("items")), "must be specified"))
    if items is not None:
        _invariants(items, _ITEM, p.child("items"), errs)
    for k, v in _props(s).items():
        _invariants(v, _FIELD, p.child("properties").key(k), errs)
    additional = s.get("additionalProperties")
    if additional is not None and additional is not True:
        if lvl == _ROOT:
            errs.append(forbidden(str(p.child("additionalProperties")), "must not be used at the root"))
        if isinstance(additional, dict):
            _invariants(additional, _FIELD, p.child("additionalProperties"), errs)

    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    if int_or_string and preserve:
        errs.append(
            invalid(
                str(p.child("x-kubernetes-preserve-unknown-fields")),
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    if int_or_string and embedded:
        errs.append(
            invalid(
                str(p.child("x-kubernetes-embedded-resource")),
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )

    skip_any_of = s.get("anyOf") == _INT_OR_STRING_ANY_OF
    all_of = s.get("allOf")
    skip_first_all_of_any_of = (
        isinstance(all_of, list)
        and bool(all_of)
        and isinstance(all_of[0], dict)
        and all_of[0].get("anyOf") == _INT_OR_STRING_ANY_OF
    )
    _value_validation(s, skip_any_of, skip_first_all_of_any_of, p, errs)

    check_metadata = lvl == _ROOT or embedded
    if embedded and stype != "object":
        if not stype:
            errs.append(
                required(str(p.child("type")), "must be object if x-kubernetes-embedded-resource is true")
            )
        else:
            errs.append(
                invalid(
                    str(p.child("type")), stype, "must be object if x-kubernetes-embedded-resource is true"
                )
            )
    elif not stype and not int_or_string and not preserve:
        detail = {
            _ROOT: "must not be empty at the root",
            _ITEM: "must not be empty for specified array items",
            _FIELD: "must not be empty for specified object fields",
        }[lvl]
        errs.append(required(str(p.child("type")), detail))
    if embedded and additional is not None:
        errs.append(
            forbidden(
                str(p.child("additionalProperties")),
                "must not be used if x-kubernetes-embedded-resource is set",
            )
        )
    if lvl == _ROOT and stype and stype != "object":
        errs.append(invalid(str(p.child("type")), stype, "must be object at the root"))

    props = _props(s)
    for name in ("kind", "apiVersion"):
        if name in props and check_metadata and props[name].get("type", "") != "string":
            errs.append(
                invalid(
                    str(p.child("properties").key(name).child("type")),
                    props[name].get("type", ""),
                    "must be string",
                )
            )
    if "metadata" in props:
        _metadata_invariants(
            props["metadata"], check_metadata, lvl, p.child("properties").key("metadata"), errs
        )
    if embedded and not preserve and not props:
        errs.append(
            required(
                str(p.child("properties")),
                "must not be empty if x-kubernetes-embedded-resource "
                "is true without x-kubernetes-preserve-unknown-fields",
            )
        )


def _metadata_invariants(s: Schema, check_metadata: bool, lvl: int, p: Path, errs: list[Cause]) -> None:
    if check_metadata and s.get("type", "") != "object":
        errs.append(invalid(str(p.child("type")), s.get("type", ""), "must be object"))
    if lvl != _ROOT:
        return
    # At the root only `type`, `default` and a `properties` naming nothing but name/generateName may be given.
    rest = {k: v for k, v in s.items() if k not in ("type", "default")}
    props = rest.get("properties")
    if isinstance(props, dict) and props and set(props) <= {"name", "generateName"}:
        del rest["properties"]
    if rest:
        errs.append(
            forbidden(
                str(p),
                "must not specify anything other than name and generateName, "
                "but metadata is implicitly specified",
            )
        )


def _value_validation(
    s: Schema, skip_any_of: bool, skip_first_all_of_any_of: bool, p: Path, errs: list[Cause]
) -> None:
    for junctor in _JUNCTORS:
        subs = s.get(junctor)
        if not isinstance(subs, list) or (junctor == "anyOf" and skip_any_of):
            continue
        for i, sub in enumerate(subs):
            if isinstance(sub, dict):
                skip = junctor == "allOf" and i == 0 and skip_first_all_of_any_of
                _nested(sub, skip, p.child(junctor).index(i), errs)
    not_schema = _dict(s.get("not"))
    if not_schema is not None:
        _nested(not_schema, False, p.child("not"), errs)
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            errs.append(
                invalid(
                    str(p.child("pattern")), pattern, f"must be a valid regular expression, but isn't: {exc}"
                )
            )


def _nested(v: Schema, skip_any_of: bool, p: Path, errs: list[Cause]) -> None:
    _value_validation(v, skip_any_of, False, p, errs)
    items = _dict(v.get("items"))
    if items is not None:
        _nested(items, False, p.child("items"), errs)
    for k, sub in _props(v).items():
        _nested(sub, False, p.child("properties").key(k), errs)
    for key, detail in _NESTED_FORBIDDEN:
        if v.get(key) not in (None, False, "", []):
            errs.append(forbidden(str(p.child(key)), detail))
    if "additionalProperties" in v:
        errs.append(forbidden(str(p.child("additionalProperties")), "must be undefined to be structural"))
    if "metadata" in _props(v):
        errs.append(
            forbidden(str(p.child("properties").key("metadata")), "must not be specified in a nested context")
        )


def _completeness(v: Schema, s: Schema | None, s_path: Path, v_path: Path, errs: list[Cause]) -> None:
    """Every field that allOf/anyOf/oneOf/not speak about must also exist in the structural part."""
    subs: list[tuple[Schema, Path]] = []
    not_schema = _dict(v.get("not"))
    if not_schema is not None:
        subs.append((not_schema, v_path.child("not")))
    for junctor in _JUNCTORS:
        for i, sub in enumerate(v.get(junctor) or []):
            if isinstance(sub, dict):
                subs.append((sub, v_path.child(junctor).index(i)))
    for sub, sub_path in subs:
        _nested_completeness(sub, s, s_path, sub_path, errs)


def _nested_completeness(v: Schema, s: Schema | None, s_path: Path, v_path: Path, errs: list[Cause]) -> None:
    if s is None:
        errs.append(required(str(s_path), f"because it is defined in {v_path}"))
        return
    _completeness(v, s, s_path, v_path, errs)
    items = _dict(v.get("items"))
    if items is not None:
        _nested_completeness(items, _dict(s.get("items")), s_path.child("items"), v_path.child("items"), errs)
    s_props = _props(s)
    for k, sub in _props(v).items():
        if k not in s_props:
            errs.append(
                required(
                    str(s_path.child("properties").key(k)),
                    f"because it is defined in {v_path.child('properties').key(k)}",
                )
            )
        else:
            _nested_completeness(
                sub, s_props[k], s_path.child("properties").key(k), v_path.child("properties").key(k), errs
            )


def _crd_rules(s: Schema, p: Path, errs: list[Cause]) -> None:
    """The CRD API's own schema rules (apiextensions validation) that go beyond structurality."""
    if s.get("uniqueItems") is True:
        errs.append(
            forbidden(
                str(p.child("uniqueItems")),
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    additional = s.get("additionalProperties")
    if additional is not None and _props(s) and (additional is False or isinstance(additional, dict)):
        errs.append(
            forbidden(
                str(p.child("additionalProperties")),
                "additionalProperties and properties are mutual exclusive",
            )
        )
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        errs.append(
            invalid(str(p.child("x-kubernetes-preserve-unknown-fields")), False, "must be true or undefined")
        )
    stype = s.get("type") or ""
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None:
        if stype != "object":
            detail = "must be object if x-kubernetes-map-type is specified"
            errs.append(
                required(str(p.child("type")), detail)
                if not stype
                else invalid(str(p.child("type")), stype, detail)
            )
        if map_type not in ("atomic", "granular"):
            errs.append(
                not_supported(str(p.child("x-kubernetes-map-type")), map_type, ["atomic", "granular"])
            )
    _list_rules(s, stype, p, errs)
    for k, sub in _props(s).items():
        _crd_rules(sub, p.child("properties").key(k), errs)
    for key in ("items", "additionalProperties", "not"):
        sub_schema = _dict(s.get(key))
        if sub_schema is not None:
            _crd_rules(sub_schema, p.child(key), errs)
    for junctor in _JUNCTORS:
        for i, sub in enumerate(s.get(junctor) or []):
            if isinstance(sub, dict):
                _crd_rules(sub, p.child(junctor).index(i), errs)


def _list_rules(s: Schema, stype: str, p: Path, errs: list[Cause]) -> None:
    list_type = s.get("x-kubernetes-list-type")
    keys = s.get("x-kubernetes-list-map-keys") or []
    if list_type is not None and stype != "array":
        detail = "must be array if x-kubernetes-list-type is specified"
        errs.append(
            required(str(p.child("type")), detail)
            if not stype
            else invalid(str(p.child("type")), stype, detail)
        )
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errs.append(
            not_supported(str(p.child("x-kubernetes-list-type")), list_type, ["atomic", "set", "map"])
        )
    if keys:
        if list_type is None:
            errs.append(
                required(
                    str(p.child("x-kubernetes-list-type")),
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
        elif list_type != "map":
            errs.append(
                invalid(
                    str(p.child("x-kubernetes-list-type")),
                    list_type,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
    if list_type != "map":
        return
    if not keys:
        errs.append(
            required(
                str(p.child("x-kubernetes-list-map-keys")),
                "must not be empty if x-kubernetes-list-type is map",
            )
        )
    items = _dict(s.get("items"))
    if items is None:
        errs.append(required(str(p.child("items")), "must have a schema if x-kubernetes-list-type is map"))
        return
    item_type = items.get("type") or ""
    if item_type != "object":
        errs.append(
            invalid(
                str(p.child("items").child("type")),
                item_type,
                "must be object if parent array's x-kubernetes-list-type is map",
            )
        )
        return
    seen: set[str] = set()
    item_props = _props(items)
    for k in keys:
        if k in item_props:
            if item_props[k].get("type") in ("array", "object"):
                errs.append(
                    invalid(
                        str(p.child("items").child("properties").key(k).child("type")),
                        item_type,
                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                    )
                )
        else:
            errs.append(
                invalid(
                    str(p.child("x-kubernetes-list-map-keys")),
                    keys,
                    "entries must all be names of item properties",
                )
            )
        if k in seen:
            errs.append(
                invalid(
                    str(p.child("x-kubernetes-list-map-keys")), keys, "must not contain duplicate entries"
                )
            )
        seen.add(k)


def sub_schema(schema: dict[str, Any] | None, path: tuple[str, ...]) -> dict[str, Any] | None:
    """The schema of the field at `path` (field names; list items are stepped through implicitly)."""
    node = schema
    for name in path:
        while node is not None and isinstance(node.get("items"), dict):
            node = node["items"]
        if node is None:
            return None
        props = _props(node)
        if name in props:
            node = props[name]
        else:
            node = _dict(node.get("additionalProperties"))
    return node


def list_map_keys(schema: dict[str, Any] | None, path: tuple[str, ...]) -> list[str] | None:
    """The `x-kubernetes-list-map-keys` of the map-list at `path` (for server-side apply), else None."""
    node = sub_schema(schema, path)
    if node is None or node.get("x-kubernetes-list-type") != "map":
        return None
    keys = node.get("x-kubernetes-list-map-keys")
    return [str(k) for k in keys] if isinstance(keys, list) and keys else None


def list_type(schema: dict[str, Any] | None, path: tuple[str, ...]) -> str | None:
    """The `x-kubernetes-list-type` (atomic/set/map) of the list at `path`, None when unset or unknown."""
    node = sub_schema(schema, path)
    value = node.get("x-kubernetes-list-type") if node is not None else None
    return value if isinstance(value, str) else None
