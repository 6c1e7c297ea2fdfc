"""A tiny builder for structural OpenAPI v3 schemas, as CustomResourceDefinitions embed them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: One OpenAPI v3 schema node (a plain JSON dict, exactly as it appears in a CRD).
Schema = dict[str, Any]

#: The pattern kube-apiserver puts on resource.Quantity fields (quoted from the generated CRDs of
#: every kubebuilder project; clients such as `kubectl explain` display it).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)"
    r"|(\.[0-9]+))))?$"
)


def _with(node: Schema, description: str | None, nullable: bool) -> Schema:
    if description:
        node["description"] = description
    if nullable:
        node["nullable"] = True
    return node


def obj(
    props: Mapping[str, Schema] | None = None,
    required: Sequence[str] = (),
    *,
    description: str | None = None,
    nullable: bool = False,
    map_type: str | None = None,
    preserve_unknown: bool = False,
) -> Schema:
    """An object with named properties; `required` must name properties that exist."""
    node: Schema = {"type": "object"}
    if props:
        node["properties"] = {k: dict(v) for k, v in sorted(props.items())}
    missing = [r for r in required if r not in (props or {})]
    if missing:
        # A typo here would make every object invalid; fail at import time instead.
        raise ValueError(f"required fields without a schema: {missing}")
    if required:
        node["required"] = list(required)
    if map_type:
        node["x-kubernetes-map-type"] = map_type
    if preserve_unknown:
        node["x-kubernetes-preserve-unknown-fields"] = True
    return _with(node, description, nullable)


def empty_obj(description: str | None = None) -> Schema:
    """An object that carries no fields (`upload: {}`, `blank: {}`): anything inside is pruned."""
    return obj(description=description)


def map_of(values: Schema, *, description: str | None = None, nullable: bool = False) -> Schema:
    """A `map[string]T` (additionalProperties, never together with properties)."""
    return _with({"type": "object", "additionalProperties": dict(values)}, description, nullable)


def str_map(description: str | None = None) -> Schema:
    """A `map[string]string` such as labels, annotations or nodeSelector."""
    return map_of(string(), description=description)


def arr(
    items: Schema,
    *,
    description: str | None = None,
    list_type: str | None = None,
    map_keys: Sequence[str] = (),
    max_items: int | None = None,
    nullable: bool = False,
) -> Schema:
    """A list; `list_type` is `atomic`, `set` or `map` (with `map_keys`)."""
    node: Schema = {"type": "array", "items": dict(items)}
    if list_type:
        node["x-kubernetes-list-type"] = list_type
    if map_keys:
        node["x-kubernetes-list-map-keys"] = list(map_keys)
    if max_items is not None:
        node["maxItems"] = max_items
    return _with(node, description, nullable)


def string(
    *,
    enum: Sequence[str] = (),
    pattern: str | None = None,
    fmt: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    default: str | None = None,
    description: str | None = None,
    nullable: bool = False,
) -> Schema:
    node: Schema = {"type": "string"}
    if enum:
        node["enum"] = list(enum)
    if pattern:
        node["pattern"] = pattern
    if fmt:
        node["format"] = fmt
    if min_length is not None:
        node["minLength"] = min_length
    if max_length is not None:
        node["maxLength"] = max_length
    if default is not None:
        node["default"] = default
    return _with(node, description, nullable)


def date_time(description: str | None = None, *, nullable: bool = False) -> Schema:
    """A metav1.Time: RFC 3339 in a string."""
    return string(fmt="date-time", description=description, nullable=nullable)


def boolean(description: str | None = None, *, default: bool | None = None) -> Schema:
    node: Schema = {"type": "boolean"}
    if default is not None:
        node["default"] = default
    return _with(node, description, False)


def integer(
    description: str | None = None,
    *,
    fmt: str | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    default: int | None = None,
) -> Schema:
    node: Schema = {"type": "integer"}
    if fmt:
        node["format"] = fmt
    if minimum is not None:
        node["minimum"] = minimum
    if maximum is not None:
        node["maximum"] = maximum
    if default is not None:
        node["default"] = default
    return _with(node, description, False)


def int32(description: str | None = None, *, minimum: int | None = None,
          default: int | None = None) -> Schema:
    return integer(description, fmt="int32", minimum=minimum, default=default)


def int64(description: str | None = None, *, minimum: int | None = None) -> Schema:
    return integer(description, fmt="int64", minimum=minimum)


def number(description: str | None = None) -> Schema:
    return _with({"type": "number"}, description, False)


def int_or_string(description: str | None = None) -> Schema:
    """An intstr.IntOrString: the one node kind that may have no `type` in a structural schema."""
    return _with({"anyOf": [{"type": "integer"}, {"type": "string"}],
                  "x-kubernetes-int-or-string": True}, description, False)


def quantity(description: str | None = None) -> Schema:
    """A resource.Quantity ("1Gi", 1073741824): int-or-string with the quantity pattern."""
    node = int_or_string(description)
    node["pattern"] = QUANTITY_PATTERN
    return node


def preserve_unknown(description: str | None = None, *, nullable: bool = False) -> Schema:
    """An object kept as sent: for deep, rarely used subtrees we do not model field by field."""
    return _with({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, description, nullable)


def embedded_metadata() -> Schema:
    """ObjectMeta inside a template (VM template, dataVolumeTemplates, DataImportCron template).

    Kept whole: an object with no properties would otherwise prune the labels and annotations that
    controllers copy onto the objects they create.
    """
    return preserve_unknown(nullable=True)


def described(node: Schema, description: str) -> Schema:
    """A copy of `node` with a description (for shared pieces reused under different names)."""
    out = dict(node)
    out["description"] = description
    return out
