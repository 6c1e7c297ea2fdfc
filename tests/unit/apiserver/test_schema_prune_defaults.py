"""Pruning (with kube's unknown-field paths) and defaulting of custom resources."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pycdi.cluster.apiserver.schema import (
    apply_defaults,
    list_map_keys,
    list_type,
    prune,
    strict_decoding_message,
    unknown_field_messages,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "string", "default": "1Gi"},
                "source": {
                    "type": "object",
                    "properties": {"http": {"type": "object", "properties": {"url": {"type": "string"}}}},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "free": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
                },
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}

PRUNE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("nothing unknown", {"spec": {"size": "2Gi"}}, {"spec": {"size": "2Gi"}}, []),
    (
        "root keeps type and object meta",
        {"apiVersion": "v", "kind": "K", "metadata": {"name": "a"}, "other": 1},
        {"apiVersion": "v", "kind": "K", "metadata": {"name": "a"}},
        ["other"],
    ),
    (
        "unknown metadata field",
        {"metadata": {"name": "a", "bogus": 1}},
        {"metadata": {"name": "a"}},
        ["metadata.bogus"],
    ),
    (
        "nested unknown",
        {"spec": {"foo": 1, "bar": {"x": 1}, "source": {"http": {"url": "u", "x": 2}}}},
        {"spec": {"source": {"http": {"url": "u"}}}},
        ["spec.bar", "spec.foo", "spec.source.http.x"],
    ),
    (
        "additionalProperties keeps keys",
        {"spec": {"labels": {"a": "b"}}},
        {"spec": {"labels": {"a": "b"}}},
        [],
    ),
    (
        "array items",
        {"spec": {"items": [{"name": "a", "x": 1}, {"y": 2}]}},
        {"spec": {"items": [{"name": "a"}, {}]}},
        ["spec.items[0].x", "spec.items[1].y"],
    ),
    (
        "preserve-unknown keeps unknown but prunes known",
        {"spec": {"free": {"z": 1, "known": {"a": "", "b": 1}}}},
        {"spec": {"free": {"z": 1, "known": {"a": ""}}}},
        ["spec.free.known.b"],
    ),
    (
        "status preserved",
        {"status": {"anything": {"goes": [1]}}},
        {"status": {"anything": {"goes": [1]}}},
        [],
    ),
    (
        "embedded resource keeps apiVersion/kind/metadata",
        {
            "spec": {
                "template": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"labels": {"a": "b"}, "junk": 1},
                    "spec": {"x": "1", "y": 2},
                    "extra": 3,
                }
            }
        },
        {
            "spec": {
                "template": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"x": "1"},
                }
            }
        },
        ["spec.template.extra", "spec.template.metadata.junk", "spec.template.spec.y"],
    ),
    ("wrong type object under string", {"spec": {"size": {"a": 1}}}, {"spec": {"size": {}}}, ["spec.size.a"]),
]


@pytest.mark.parametrize("name, given, after, paths", PRUNE_CASES, ids=[c[0] for c in PRUNE_CASES])
def test_prune(name: str, given: dict[str, Any], after: dict[str, Any], paths: list[str]) -> None:
    obj = copy.deepcopy(given)
    assert prune(obj, SCHEMA) == paths
    assert obj == after


def test_prune_without_schema_keeps_only_type_and_meta() -> None:
    obj = {"apiVersion": "v", "kind": "K", "metadata": {}, "spec": {"a": 1}}
    assert prune(obj, None) == ["spec"]
    assert obj == {"apiVersion": "v", "kind": "K", "metadata": {}}


def test_prune_metadata_can_be_left_alone() -> None:
    obj = {"metadata": {"name": "a", "bogus": 1}}
    assert prune(obj, SCHEMA, metadata=False) == []
    assert obj["metadata"]["bogus"] == 1


def test_strict_and_warning_messages() -> None:
    assert unknown_field_messages(["spec.foo"]) == ['unknown field "spec.foo"']
    assert strict_decoding_message("DataVolume", "v1beta1", ["spec.bar", "spec.foo"]) == (
        'DataVolume in version "v1beta1" cannot be handled as a DataVolume: strict decoding error: '
        'unknown field "spec.bar", unknown field "spec.foo"'
    )


DEFAULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "mode": {"type": "string", "default": "Filesystem"},
                "opts": {
                    "type": "object",
                    "default": {},
                    "properties": {"retries": {"type": "integer", "default": 3}, "keep": {"type": "string"}},
                },
                "plain": {"type": "object", "properties": {"x": {"type": "string", "default": "d"}}},
                "n": {"type": "string", "nullable": True, "default": "z"},
                "list": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"p": {"type": "integer", "default": 80}}},
                },
                "m": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"w": {"type": "integer", "default": 1}},
                    },
                },
            },
        },
    },
}

DEFAULT_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("absent parent stays absent", {}, {}),
    (
        "missing fields of present object",
        {"spec": {}},
        {"spec": {"mode": "Filesystem", "opts": {"retries": 3}, "n": "z"}},
    ),
    (
        "given values win",
        {"spec": {"mode": "Block", "opts": {"retries": 0}, "n": "q"}},
        {"spec": {"mode": "Block", "opts": {"retries": 0}, "n": "q"}},
    ),
    (
        "default inside present object without default",
        {"spec": {"plain": {}, "mode": "B", "opts": {}, "n": "q"}},
        {"spec": {"plain": {"x": "d"}, "mode": "B", "opts": {"retries": 3}, "n": "q"}},
    ),
    (
        "non-nullable null with default is defaulted",
        {"spec": {"mode": None, "opts": None, "n": "q"}},
        {"spec": {"mode": "Filesystem", "opts": {"retries": 3}, "n": "q"}},
    ),
    (
        "non-nullable null without default is dropped",
        {"spec": {"plain": {"x": None}, "mode": "B", "opts": {}, "n": "q", "list": None}},
        {"spec": {"plain": {"x": "d"}, "mode": "B", "opts": {"retries": 3}, "n": "q"}},
    ),
    (
        "nullable null stays",
        {"spec": {"n": None, "mode": "B", "opts": {}}},
        {"spec": {"n": None, "mode": "B", "opts": {"retries": 3}}},
    ),
    (
        "list items and map values",
        {"spec": {"mode": "B", "opts": {}, "n": "q", "list": [{}, {"p": 1}], "m": {"a": {}}}},
        {
            "spec": {
                "mode": "B",
                "opts": {"retries": 3},
                "n": "q",
                "list": [{"p": 80}, {"p": 1}],
                "m": {"a": {"w": 1}},
            }
        },
    ),
]


@pytest.mark.parametrize("name, given, after", DEFAULT_CASES, ids=[c[0] for c in DEFAULT_CASES])
def test_apply_defaults(name: str, given: dict[str, Any], after: dict[str, Any]) -> None:
    obj = copy.deepcopy(given)
    apply_defaults(obj, DEFAULT_SCHEMA)
    assert obj == after


def test_defaults_are_copies() -> None:
    a: dict[str, Any] = {"spec": {}}
    b: dict[str, Any] = {"spec": {}}
    apply_defaults(a, DEFAULT_SCHEMA)
    apply_defaults(b, DEFAULT_SCHEMA)
    a["spec"]["opts"]["retries"] = 9
    assert b["spec"]["opts"]["retries"] == 3
    assert DEFAULT_SCHEMA["properties"]["spec"]["properties"]["opts"]["default"] == {}


LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "containers": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "ports": {
                                "type": "array",
                                "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "containerPort": {"type": "integer"},
                                        "protocol": {"type": "string"},
                                    },
                                },
                            },
                            "args": {
                                "type": "array",
                                "items": {"type": "string"},
                                "x-kubernetes-list-type": "set",
                            },
                        },
                    },
                },
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        }
    },
}


def test_list_map_keys_and_types() -> None:
    assert list_map_keys(LIST_SCHEMA, ("spec", "containers")) == ["name"]
    assert list_map_keys(LIST_SCHEMA, ("spec", "containers", "ports")) == ["containerPort", "protocol"]
    assert list_map_keys(LIST_SCHEMA, ("spec", "containers", "args")) is None
    assert list_map_keys(LIST_SCHEMA, ("spec", "tags")) is None
    assert list_map_keys(LIST_SCHEMA, ("spec", "nope", "deeper")) is None
    assert list_type(LIST_SCHEMA, ("spec", "containers", "args")) == "set"
    assert list_type(LIST_SCHEMA, ("spec", "tags")) is None
