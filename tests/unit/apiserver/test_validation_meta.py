"""ObjectMeta validation shared by every type: names, labels, annotations, finalizers, owners, updates."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pycdi.cluster.apiserver.resources import ResourceInfo
from pycdi.cluster.apiserver.validation import validate
from pycdi.cluster.apiserver.validation.names import is_dns1123_label, is_qualified_name

CM = ResourceInfo("", "v1", "configmaps", "ConfigMap", True)
NS = ResourceInfo("", "v1", "namespaces", "Namespace", False)
SVC = ResourceInfo("", "v1", "services", "Service", True)
ROLE = ResourceInfo("rbac.authorization.k8s.io", "v1", "roles", "Role", True)
DV = ResourceInfo("cdi.kubevirt.io", "v1beta1", "datavolumes", "DataVolume", True, custom=True)
WIDGET = ResourceInfo("example.com", "v1", "widgets", "Widget", False, custom=True)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def obj(name: str | None = "ok", namespace: str | None = "default", **meta: Any) -> dict[str, Any]:
    m: dict[str, Any] = dict(meta)
    if name is not None:
        m["name"] = name
    if namespace is not None:
        m["namespace"] = namespace
    return {"metadata": m}


def causes(
    info: ResourceInfo, o: dict[str, Any], old: dict[str, Any] | None = None
) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in validate(info, o, old)]


@pytest.mark.parametrize(
    ("info", "name", "namespace", "expected"),
    [
        (CM, "good-name.x", "default", []),
        (
            CM,
            "Bad",
            "default",
            [("FieldValueInvalid", "metadata.name", f'Invalid value: "Bad": {SUBDOMAIN_MSG}')],
        ),
        (
            CM,
            "",
            "default",
            [("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")],
        ),
        (
            CM,
            "a" * 254,
            "default",
            [
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: "{"a" * 254}": must be no more than 253 characters',
                )
            ],
        ),
        (CM, "ok", "", [("FieldValueRequired", "metadata.namespace", "Required value")]),
        (
            CM,
            "ok",
            "Bad.ns",
            [("FieldValueInvalid", "metadata.namespace", f'Invalid value: "Bad.ns": {LABEL_MSG}')],
        ),
        (
            NS,
            "ns.with.dots",
            None,
            [("FieldValueInvalid", "metadata.name", 'Invalid value: "ns.with.dots": must not contain dots')],
        ),
        (
            NS,
            "ok",
            "x",
            [("FieldValueForbidden", "metadata.namespace", "Forbidden: not allowed on this type")],
        ),
        (
            SVC,
            "1abc",
            "default",
            [("FieldValueInvalid", "metadata.name", f'Invalid value: "1abc": {DNS1035_MSG}')],
        ),
        (ROLE, "system:controller:x", "default", []),
        (
            ROLE,
            "a/b",
            "default",
            [("FieldValueInvalid", "metadata.name", "Invalid value: \"a/b\": may not contain '/'")],
        ),
        (
            ROLE,
            "..",
            "default",
            [("FieldValueInvalid", "metadata.name", "Invalid value: \"..\": may not be '..'")],
        ),
        (
            DV,
            "My_DV",
            "default",
            [("FieldValueInvalid", "metadata.name", f'Invalid value: "My_DV": {SUBDOMAIN_MSG}')],
        ),
        (WIDGET, "w1", None, []),
    ],
)
def test_names(
    info: ResourceInfo, name: str, namespace: str | None, expected: list[tuple[str, str, str]]
) -> None:
    assert [c for c in causes(info, obj(name, namespace)) if c[1].startswith("metadata.")] == expected


def test_generate_name_prefix_may_end_with_dash() -> None:
    assert causes(CM, obj("gen-abcde", generateName="gen-")) == []
    assert causes(CM, obj("gen-abcde", generateName="Gen-"))[0][:2] == (
        "FieldValueInvalid",
        "metadata.generateName",
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"app": "demo", "example.com/x": "", "a.b_c-d": "v.1"}, []),
        ({"a/b/c": "x"}, ["a/b/c"]),
        ({"/x": "v"}, ["prefix part must be non-empty"]),
        ({"Bad_Prefix/x": "v"}, ["prefix part " + SUBDOMAIN_MSG]),
        ({"-x": "v"}, [NAME_PART_MSG]),
        ({"x": "bad value"}, ["a valid label must be an empty string"]),
        ({"x": "v" * 64}, ["must be no more than 63 characters"]),
    ],
)
def test_labels(labels: dict[str, str], expected: list[str]) -> None:
    got = causes(CM, obj(labels=labels))
    assert len(got) == len(expected)
    for (reason, fld, message), want in zip(got, expected, strict=True):
        assert (reason, fld) == ("FieldValueInvalid", "metadata.labels")
        assert want in message


def test_annotations() -> None:
    assert causes(CM, obj(annotations={"Example.COM/Key": "anything goes", "k": ""})) == []
    got = causes(CM, obj(annotations={"a b": "x"}))
    assert got[0][:2] == ("FieldValueInvalid", "metadata.annotations")
    big = {"k": "x" * (256 * 1024)}
    assert causes(CM, obj(annotations=big)) == [
        ("FieldValueTooLong", "metadata.annotations", "Too long: may not be more than 262144 bytes")
    ]


@pytest.mark.parametrize(
    ("info", "finalizers", "expected"),
    [
        (CM, ["example.com/f", "kubernetes", "orphan"], []),
        (
            CM,
            ["custom"],
            ['Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified'],
        ),
        (DV, ["custom"], []),
        (CM, ["a b/c"], ['Invalid value: "a b/c": prefix part ' + SUBDOMAIN_MSG]),
        (
            CM,
            ["orphan", "foregroundDeletion"],
            [
                'Invalid value: []string{"orphan", "foregroundDeletion"}: finalizer orphan and '
                "foregroundDeletion cannot be "
                "both set"
            ],
        ),
    ],
)
def test_finalizers(info: ResourceInfo, finalizers: list[str], expected: list[str]) -> None:
    assert [m for _, _, m in causes(info, obj(finalizers=finalizers))] == expected


def test_owner_references() -> None:
    good = {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "name": "dv",
        "uid": "u1",
        "controller": True,
    }
    assert causes(CM, obj(ownerReferences=[good])) == []
    assert causes(CM, obj(ownerReferences=[{}])) == [
        (
            "FieldValueInvalid",
            "metadata.ownerReferences.apiVersion",
            'Invalid value: "": version must not be empty',
        ),
        ("FieldValueInvalid", "metadata.ownerReferences.kind", 'Invalid value: "": kind must not be empty'),
        ("FieldValueInvalid", "metadata.ownerReferences.name", 'Invalid value: "": name must not be empty'),
        ("FieldValueInvalid", "metadata.ownerReferences.uid", 'Invalid value: "": uid must not be empty'),
    ]
    two = causes(CM, obj(ownerReferences=[good, {**good, "name": "dv2", "uid": "u2"}]))
    assert len(two) == 1
    assert two[0][2].endswith(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "DataVolume/dv and DataVolume/dv2"
    )
    event = causes(CM, obj(ownerReferences=[{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}]))
    assert event[0][2].endswith("/v1, Kind=Event is disallowed from being an owner")


def test_update_identity_is_immutable() -> None:
    old = obj("cm", uid="u1", creationTimestamp="2024-01-01T00:00:00Z", generation=3)
    assert causes(CM, copy.deepcopy(old), old) == []
    # Omitted uid / creationTimestamp are filled from the stored object by kube; not an error.
    assert causes(CM, obj("cm", generation=3), old) == []
    changed = obj("cm2", "other", uid="u2", generation=2)
    assert causes(CM, changed, old) == [
        ("FieldValueInvalid", "metadata.generation", "Invalid value: 2: must not be decremented"),
        ("FieldValueInvalid", "metadata.name", 'Invalid value: "cm2": field is immutable'),
        ("FieldValueInvalid", "metadata.namespace", 'Invalid value: "other": field is immutable'),
        ("FieldValueInvalid", "metadata.uid", 'Invalid value: "u2": field is immutable'),
    ]


def test_no_new_finalizers_while_deleting() -> None:
    old = obj("cm", deletionTimestamp="2024-01-01T00:00:00Z", finalizers=["example.com/a"])
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    assert causes(CM, new, old) == [
        (
            "FieldValueForbidden",
            "metadata.finalizers",
            "Forbidden: no new finalizers can be added if the object is "
            'being deleted, found new finalizers []string{"example.com/b"}',
        )
    ]
    new["metadata"]["finalizers"] = []
    assert causes(CM, new, old) == []


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a", True),
        ("a-b", True),
        ("-a", False),
        ("a" * 63, True),
        ("a" * 64, False),
        ("A", False),
        ("a.b", False),
    ],
)
def test_dns_label_table(value: str, ok: bool) -> None:
    assert (is_dns1123_label(value) == []) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a", True),
        ("A_b.c", True),
        ("x.io/A", True),
        ("x.io/", False),
        ("a/b/c", False),
        ("_a", False),
        ("a" * 64, False),
        ("", False),
    ],
)
def test_qualified_name_table(value: str, ok: bool) -> None:
    assert (is_qualified_name(value) == []) is ok
