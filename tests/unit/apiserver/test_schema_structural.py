"""Structural-schema checks of CRD schemas, with kube's field paths and messages."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.cluster.apiserver.schema import check_structural

P = "spec.versions[0].schema.openAPIV3Schema"


def root(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


CASES: list[tuple[str, dict[str, Any], list[tuple[str, str, str | None]]]] = [
    (
        "fine",
        root(
            spec=root(a={"type": "string"}),
            status={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        ),
        [],
    ),
    (
        "no type at the root",
        {"properties": {}},
        [("FieldValueRequired", f"{P}.type", "Required value: must not be empty at the root")],
    ),
    (
        "root not object",
        {"type": "string"},
        [("FieldValueInvalid", f"{P}.type", 'Invalid value: "string": must be object at the root')],
    ),
    (
        "field without type",
        root(spec={"properties": {}}),
        [
            (
                "FieldValueRequired",
                f"{P}.properties[spec].type",
                "Required value: must not be empty for specified object fields",
            )
        ],
    ),
    (
        "items without type",
        root(l={"type": "array", "items": {}}),
        [
            (
                "FieldValueRequired",
                f"{P}.properties[l].items.type",
                "Required value: must not be empty for specified array items",
            )
        ],
    ),
    (
        "array without items",
        root(l={"type": "array"}),
        [("FieldValueRequired", f"{P}.properties[l].items", "Required value: must be specified")],
    ),
    (
        "int-or-string and preserve-unknown need no type",
        root(q={"x-kubernetes-int-or-string": True}, p={"x-kubernetes-preserve-unknown-fields": True}),
        [],
    ),
    (
        "int-or-string anyOf pattern allowed",
        root(q={"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}),
        [],
    ),
    (
        "type in anyOf",
        root(q={"type": "string", "anyOf": [{"type": "string"}]}),
        [
            (
                "FieldValueForbidden",
                f"{P}.properties[q].anyOf[0].type",
                "Forbidden: must be empty to be structural",
            )
        ],
    ),
    (
        "description in allOf",
        root(q={"type": "string", "allOf": [{"description": "x"}]}),
        [
            (
                "FieldValueForbidden",
                f"{P}.properties[q].allOf[0].description",
                "Forbidden: must be empty to be structural",
            )
        ],
    ),
    (
        "additionalProperties at the root",
        {"type": "object", "additionalProperties": {"type": "string"}},
        [("FieldValueForbidden", f"{P}.additionalProperties", "Forbidden: must not be used at the root")],
    ),
    (
        "properties with additionalProperties",
        root(
            m={
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            }
        ),
        [
            (
                "FieldValueForbidden",
                f"{P}.properties[m].additionalProperties",
                "Forbidden: additionalProperties and properties are mutual exclusive",
            )
        ],
    ),
    (
        "metadata restricted at root",
        root(metadata={"type": "object", "properties": {"labels": {"type": "object"}}}),
        [
            (
                "FieldValueForbidden",
                f"{P}.properties[metadata]",
                "Forbidden: must not specify anything other than name and generateName, "
                "but metadata is implicitly specified",
            )
        ],
    ),
    (
        "metadata name allowed",
        root(metadata={"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}}),
        [],
    ),
    (
        "kind must be string",
        root(kind={"type": "integer"}),
        [("FieldValueInvalid", f"{P}.properties[kind].type", 'Invalid value: "integer": must be string')],
    ),
    (
        "embedded resource must be object",
        root(t={"x-kubernetes-embedded-resource": True, "type": "string"}),
        [
            (
                "FieldValueRequired",
                f"{P}.properties[t].properties",
                "Required value: must not be empty if x-kubernetes-embedded-resource is true without "
                "x-kubernetes-preserve-unknown-fields",
            ),
            (
                "FieldValueInvalid",
                f"{P}.properties[t].type",
                'Invalid value: "string": must be object if x-kubernetes-embedded-resource is true',
            ),
        ],
    ),
    (
        "completeness",
        {
            "type": "object",
            "anyOf": [{"properties": {"spec": {"properties": {"x": {}}}}}],
            "properties": {"spec": {"type": "object"}},
        },
        [
            (
                "FieldValueRequired",
                f"{P}.properties[spec].properties[x]",
                f"Required value: because it is defined in {P}.anyOf[0].properties[spec].properties[x]",
            )
        ],
    ),
    (
        "bad pattern",
        root(s={"type": "string", "pattern": "("}),
        [("FieldValueInvalid", f"{P}.properties[s].pattern", None)],
    ),
    (
        "list map needs keys",
        root(l={"type": "array", "x-kubernetes-list-type": "map", "items": root()}),
        [
            (
                "FieldValueRequired",
                f"{P}.properties[l].x-kubernetes-list-map-keys",
                "Required value: must not be empty if x-kubernetes-list-type is map",
            )
        ],
    ),
    (
        "list map key must exist",
        root(
            l={
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": root(id={"type": "string"}),
            }
        ),
        [
            (
                "FieldValueInvalid",
                f"{P}.properties[l].x-kubernetes-list-map-keys",
                'Invalid value: ["name"]: entries must all be names of item properties',
            )
        ],
    ),
    (
        "unknown list type",
        root(l={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"}),
        [
            (
                "FieldValueNotSupported",
                f"{P}.properties[l].x-kubernetes-list-type",
                'Unsupported value: "bag": supported values: "atomic", "set", "map"',
            )
        ],
    ),
    (
        "uniqueItems forbidden",
        root(l={"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        [
            (
                "FieldValueForbidden",
                f"{P}.properties[l].uniqueItems",
                "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        ],
    ),
]


@pytest.mark.parametrize("name, schema, expected", CASES, ids=[c[0] for c in CASES])
def test_check_structural(
    name: str, schema: dict[str, Any], expected: list[tuple[str, str, str | None]]
) -> None:
    causes = check_structural(schema)
    got = [(c["reason"], c["field"], c["message"]) for c in causes]
    assert [(r, f) for r, f, _ in got] == [(r, f) for r, f, _ in expected]
    for (_, _, message), (_, _, want) in zip(got, expected, strict=True):
        if want is not None:
            assert message == want


def test_custom_path() -> None:
    causes = check_structural({"type": "string"}, path="spec.versions[2].schema.openAPIV3Schema")
    assert causes[0]["field"] == "spec.versions[2].schema.openAPIV3Schema.type"
