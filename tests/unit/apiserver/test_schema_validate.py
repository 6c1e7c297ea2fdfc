"""Custom resource validation against a structural schema: kube's causes, field paths and messages."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.cluster.apiserver.schema import validate


def obj(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec}


def root(spec_schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": spec_schema}}


def props(**fields: Any) -> dict[str, Any]:
    return {"type": "object", "properties": fields}


CASES: list[tuple[str, dict[str, Any], Any, list[tuple[str, str, str]]]] = [
    ("valid", props(n={"type": "integer"}), {"n": 3}, []),
    (
        "type",
        props(n={"type": "integer"}),
        {"n": "3"},
        [
            (
                "FieldValueTypeInvalid",
                "spec.n",
                'Invalid value: "string": spec.n in body must be of type integer: "string"',
            )
        ],
    ),
    ("integral float is an integer", props(n={"type": "integer"}), {"n": 3.0}, []),
    ("integer is a number", props(n={"type": "number"}), {"n": 3}, []),
    (
        "fraction is not an integer",
        props(n={"type": "integer"}),
        {"n": 1.5},
        [
            (
                "FieldValueTypeInvalid",
                "spec.n",
                'Invalid value: "number": spec.n in body must be of type integer: "number"',
            )
        ],
    ),
    (
        "bool is not an integer",
        props(n={"type": "integer"}),
        {"n": True},
        [
            (
                "FieldValueTypeInvalid",
                "spec.n",
                'Invalid value: "boolean": spec.n in body must be of type integer: "boolean"',
            )
        ],
    ),
    (
        "null",
        props(s={"type": "string"}),
        {"s": None},
        [
            (
                "FieldValueTypeInvalid",
                "spec.s",
                'Invalid value: "null": spec.s in body must be of type string: "null"',
            )
        ],
    ),
    ("nullable", props(s={"type": "string", "nullable": True}), {"s": None}, []),
    (
        "enum",
        props(c={"type": "string", "enum": ["a", "b"]}),
        {"c": "x"},
        [("FieldValueNotSupported", "spec.c", 'Unsupported value: "x": supported values: "a", "b"')],
    ),
    (
        "enum numbers",
        props(c={"type": "integer", "enum": [1, 2]}),
        {"c": 3},
        [("FieldValueNotSupported", "spec.c", 'Unsupported value: 3: supported values: "1", "2"')],
    ),
    (
        "enum bool vs int",
        props(c={"enum": [1], "x-kubernetes-preserve-unknown-fields": True}),
        {"c": True},
        [("FieldValueNotSupported", "spec.c", 'Unsupported value: true: supported values: "1"')],
    ),
    (
        "required",
        {**props(a={"type": "string"}), "required": ["a", "b"]},
        {},
        [
            ("FieldValueRequired", "spec.a", "Required value"),
            ("FieldValueRequired", "spec.b", "Required value"),
        ],
    ),
    (
        "nested path",
        props(source=props(http={**props(url={"type": "string"}), "required": ["url"]})),
        {"source": {"http": {}}},
        [("FieldValueRequired", "spec.source.http.url", "Required value")],
    ),
    (
        "array item path",
        props(l={"type": "array", "items": props(n={"type": "string"})}),
        {"l": [{"n": "ok"}, {"n": 1}]},
        [
            (
                "FieldValueTypeInvalid",
                "spec.l[1].n",
                'Invalid value: "integer": spec.l[1].n in body must be of type string: "integer"',
            )
        ],
    ),
    (
        "map value path",
        props(m={"type": "object", "additionalProperties": {"type": "integer"}}),
        {"m": {"k": "v"}},
        [
            (
                "FieldValueTypeInvalid",
                "spec.m.k",
                'Invalid value: "string": spec.m.k in body must be of type integer: "string"',
            )
        ],
    ),
    (
        "minimum",
        props(n={"type": "integer", "minimum": 1}),
        {"n": 0},
        [
            (
                "FieldValueInvalid",
                "spec.n",
                "Invalid value: 0: spec.n in body should be greater than or equal to 1",
            )
        ],
    ),
    (
        "exclusive maximum",
        props(n={"type": "number", "maximum": 2, "exclusiveMaximum": True}),
        {"n": 2.0},
        [("FieldValueInvalid", "spec.n", "Invalid value: 2: spec.n in body should be less than 2")],
    ),
    (
        "maximum float",
        props(n={"type": "number", "maximum": 1.5}),
        {"n": 2.5},
        [
            (
                "FieldValueInvalid",
                "spec.n",
                "Invalid value: 2.5: spec.n in body should be less than or equal to 1.5",
            )
        ],
    ),
    (
        "multipleOf",
        props(n={"type": "integer", "multipleOf": 4}),
        {"n": 6},
        [("FieldValueInvalid", "spec.n", "Invalid value: 6: spec.n in body should be a multiple of 4")],
    ),
    (
        "maxLength",
        props(s={"type": "string", "maxLength": 3}),
        {"s": "abcd"},
        [("FieldValueTooLong", "spec.s", "Too long: may not be more than 3 bytes")],
    ),
    (
        "minLength",
        props(s={"type": "string", "minLength": 3}),
        {"s": "ab"},
        [
            (
                "FieldValueInvalid",
                "spec.s",
                'Invalid value: "ab": spec.s in body should be at least 3 chars long',
            )
        ],
    ),
    (
        "pattern",
        props(s={"type": "string", "pattern": "^[a-z]+$"}),
        {"s": "A1"},
        [("FieldValueInvalid", "spec.s", "Invalid value: \"A1\": spec.s in body should match '^[a-z]+$'")],
    ),
    (
        "format date-time",
        props(t={"type": "string", "format": "date-time"}),
        {"t": "yesterday"},
        [
            (
                "FieldValueTypeInvalid",
                "spec.t",
                'Invalid value: "yesterday": spec.t in body must be of type date-time: "yesterday"',
            )
        ],
    ),
    (
        "format date-time ok",
        props(t={"type": "string", "format": "date-time"}),
        {"t": "2024-01-02T03:04:05Z"},
        [],
    ),
    (
        "format byte",
        props(b={"type": "string", "format": "byte"}),
        {"b": "not base64!"},
        [
            (
                "FieldValueTypeInvalid",
                "spec.b",
                'Invalid value: "not base64!": spec.b in body must be of type byte: "not base64!"',
            )
        ],
    ),
    ("format int32 unchecked as kube", props(n={"type": "integer", "format": "int32"}), {"n": 2**40}, []),
    (
        "minItems",
        props(l={"type": "array", "items": {"type": "string"}, "minItems": 2}),
        {"l": ["a"]},
        [("FieldValueInvalid", "spec.l", "Invalid value: 1: spec.l in body should have at least 2 items")],
    ),
    (
        "maxItems",
        props(l={"type": "array", "items": {"type": "string"}, "maxItems": 1}),
        {"l": ["a", "b"]},
        [("FieldValueTooMany", "spec.l", "Too many: 2: must have at most 1 item")],
    ),
    (
        "uniqueItems",
        props(l={"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        {"l": ["a", "a"]},
        [("FieldValueInvalid", "spec.l", 'Invalid value: "": spec.l in body shouldn\'t contain duplicates')],
    ),
    (
        "minProperties",
        props(m={"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 2}),
        {"m": {"a": "b"}},
        [
            (
                "FieldValueInvalid",
                "spec.m",
                "Invalid value: 2: spec.m in body should have at least 2 properties",
            )
        ],
    ),
    (
        "maxProperties",
        props(m={"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1}),
        {"m": {"a": "b", "c": "d"}},
        [("FieldValueTooMany", "spec.m", "Too many: 1: has too many items")],
    ),
    ("int-or-string int", props(q={"x-kubernetes-int-or-string": True}), {"q": 5}, []),
    ("int-or-string string", props(q={"x-kubernetes-int-or-string": True}), {"q": "5Gi"}, []),
    (
        "int-or-string bool",
        props(q={"x-kubernetes-int-or-string": True}),
        {"q": True},
        [
            (
                "FieldValueTypeInvalid",
                "spec.q",
                'Invalid value: "boolean": spec.q in body must be of type integer,string: "boolean"',
            )
        ],
    ),
    (
        "anyOf",
        props(q={"type": "string", "anyOf": [{"maxLength": 1}, {"pattern": "^x"}]}),
        {"q": "ab"},
        [
            (
                "FieldValueInvalid",
                "<nil>",
                'Invalid value: "": "spec.q" must validate at least one schema (anyOf)',
            ),
            ("FieldValueTooLong", "spec.q", "Too long: may not be more than 1 byte"),
        ],
    ),
    (
        "anyOf ok",
        props(q={"type": "string", "anyOf": [{"maxLength": 1}, {"pattern": "^a"}]}),
        {"q": "ab"},
        [],
    ),
    (
        "oneOf none",
        props(
            s={
                **props(a={"type": "string"}, b={"type": "string"}),
                "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
            }
        ),
        {"s": {}},
        [
            (
                "FieldValueInvalid",
                "<nil>",
                'Invalid value: "": "spec.s" must validate one and only one schema (oneOf). Found none valid',
            ),
            ("FieldValueRequired", "spec.s.a", "Required value"),
        ],
    ),
    (
        "oneOf two",
        props(
            s={
                **props(a={"type": "string"}, b={"type": "string"}),
                "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
            }
        ),
        {"s": {"a": "", "b": ""}},
        [
            (
                "FieldValueInvalid",
                "<nil>",
                'Invalid value: "": "spec.s" must validate one and only one schema (oneOf). '
                "Found 2 valid alternatives",
            )
        ],
    ),
    (
        "not",
        props(s={"type": "string", "not": {"enum": ["bad"]}}),
        {"s": "bad"},
        [("FieldValueInvalid", "<nil>", 'Invalid value: "": "spec.s" must not validate the schema (not)')],
    ),
    (
        "allOf",
        props(s={"type": "string", "allOf": [{"minLength": 1}, {"maxLength": 2}]}),
        {"s": "abc"},
        [
            ("FieldValueTooLong", "spec.s", "Too long: may not be more than 2 bytes"),
            (
                "FieldValueInvalid",
                "<nil>",
                'Invalid value: "": "spec.s" must validate all the schemas (allOf)',
            ),
        ],
    ),
    (
        "list set duplicates",
        props(l={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}),
        {"l": ["a", "b", "a", "a"]},
        [("FieldValueDuplicate", "spec.l[2]", 'Duplicate value: "a"')],
    ),
    (
        "list map duplicates",
        props(
            l={
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": props(name={"type": "string"}, v={"type": "integer"}),
            }
        ),
        {"l": [{"name": "a", "v": 1}, {"name": "a", "v": 2}, {"name": "b"}]},
        [("FieldValueDuplicate", "spec.l[1]", 'Duplicate value: {"name":"a"}')],
    ),
    (
        "list map two keys",
        props(
            l={
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["port", "protocol"],
                "items": props(port={"type": "integer"}, protocol={"type": "string"}),
            }
        ),
        {
            "l": [
                {"port": 80, "protocol": "TCP"},
                {"port": 80, "protocol": "UDP"},
                {"protocol": "TCP", "port": 80},
            ]
        },
        [("FieldValueDuplicate", "spec.l[2]", 'Duplicate value: {"port":80,"protocol":"TCP"}')],
    ),
    (
        "list map under a map key",
        props(
            m={
                "type": "object",
                "additionalProperties": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
            }
        ),
        {"m": {"k": ["x", "x"]}},
        [("FieldValueDuplicate", "spec.m[k][1]", 'Duplicate value: "x"')],
    ),
    (
        "preserve unknown without type",
        props(p={"x-kubernetes-preserve-unknown-fields": True}),
        {"p": [1, {"a": 2}]},
        [],
    ),
    (
        "cel rules are ignored",
        props(s={"type": "string", "x-kubernetes-validations": [{"rule": "self == 'x'"}]}),
        {"s": "y"},
        [],
    ),
]


@pytest.mark.parametrize("name, spec_schema, spec, expected", CASES, ids=[c[0] for c in CASES])
def test_validate(
    name: str, spec_schema: dict[str, Any], spec: Any, expected: list[tuple[str, str, str]]
) -> None:
    causes = validate(obj(spec), root(spec_schema))
    assert [(c["reason"], c["field"], c["message"]) for c in causes] == expected


def test_root_required_and_no_schema() -> None:
    schema = {"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}
    assert validate({"apiVersion": "x/v1", "kind": "X", "metadata": {}}, schema) == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec"}
    ]
    assert validate({"anything": 1}, None) == []
