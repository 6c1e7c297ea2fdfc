"""Tests for decode_protobuf_object: hand-built messages for every field kubectl cannot set, and errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from pycdi.cluster.apiserver.protobuf import (
    PROTOBUF_CONTENT_TYPE,
    SUPPORTED_KINDS,
    ProtobufError,
    UnsupportedKindError,
    decode_protobuf_object,
)
from pycdi.cluster.apiserver.protobuf.wire import FIXED32, encode_field, encode_varint

FIXTURES = Path(__file__).parent / "protobuf_fixtures"


def f(number: int, value: int | bytes | str) -> bytes:
    return encode_field(number, value)


def m(*parts: bytes) -> bytes:
    return b"".join(parts)


def entry(key: str, value: bytes | str) -> bytes:
    """A map entry message {key=1, value=2}."""
    return m(f(1, key), f(2, value))


def envelope(api_version: str, kind: str, raw: bytes, content_type: str = "") -> bytes:
    """The k8s\\0 magic, then runtime.Unknown.

    Unknown = {typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4}.
    """
    return b"k8s\x00" + m(f(1, m(f(1, api_version), f(2, kind))), f(2, raw), f(3, ""), f(4, content_type))


def go_empty_meta(name: str) -> bytes:
    """ObjectMeta as Go's marshaller writes it: every non-pointer field, zero or not."""
    return m(f(1, name), f(2, ""), f(3, ""), f(4, ""), f(5, ""), f(6, ""), f(7, 0), f(8, b""))


def test_constants() -> None:
    assert PROTOBUF_CONTENT_TYPE == "application/vnd.kubernetes.protobuf"
    assert SUPPORTED_KINDS == {
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "ServiceAccount"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
        ("authentication.k8s.io/v1", "SelfSubjectReview"),
        ("authentication.k8s.io/v1beta1", "SelfSubjectReview"),
        ("authentication.k8s.io/v1alpha1", "SelfSubjectReview"),
    }


def test_zero_valued_non_pointer_fields_are_omitted() -> None:
    body = envelope("v1", "Namespace", m(f(1, go_empty_meta("demo")), f(2, b""), f(3, m(f(1, "")))))
    assert decode_protobuf_object(body) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "demo"},
        "spec": {},
        "status": {},
    }


def test_object_meta_every_field() -> None:
    time_2024 = m(f(1, 1704164645))  # 2024-01-02T03:04:05Z
    owner = m(
        f(1, "DataVolume"), f(3, "dv1"), f(4, "uid-1"), f(5, "cdi.kubevirt.io/v1beta1"), f(6, 1), f(7, 0)
    )
    managed = m(
        f(1, "kubectl-create"),
        f(2, "Update"),
        f(3, "v1"),
        f(4, time_2024),
        f(6, "FieldsV1"),
        f(7, f(1, b'{"f:data":{".":{}}}')),
        f(8, ""),
    )
    meta = m(
        f(1, "cm1"),
        f(2, "cm-"),
        f(3, "ns1"),
        f(4, "/api/v1/x"),
        f(5, "uid-0"),
        f(6, "42"),
        f(7, 3),
        f(8, time_2024),
        f(9, m(f(1, 1704164646), f(2, 500))),
        f(10, 0),
        f(11, entry("app", "demo")),
        f(11, entry("tier", "")),
        f(12, entry("note", "a=b")),
        f(13, owner),
        f(14, "example.com/one"),
        f(14, "example.com/two"),
        f(17, managed),
    )
    decoded = decode_protobuf_object(envelope("v1", "ConfigMap", f(1, meta)))
    assert decoded["metadata"] == {
        "name": "cm1",
        "generateName": "cm-",
        "namespace": "ns1",
        "selfLink": "/api/v1/x",
        "uid": "uid-0",
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": "2024-01-02T03:04:05Z",
        "deletionTimestamp": "2024-01-02T03:04:06Z",  # nanos dropped, as Kubernetes' own Time does
        "deletionGracePeriodSeconds": 0,  # a pointer: present zero is kept
        "labels": {"app": "demo", "tier": ""},
        "annotations": {"note": "a=b"},
        "ownerReferences": [
            {
                "apiVersion": "cdi.kubevirt.io/v1beta1",
                "kind": "DataVolume",
                "name": "dv1",
                "uid": "uid-1",
                "controller": True,
                "blockOwnerDeletion": False,
            }
        ],
        "finalizers": ["example.com/one", "example.com/two"],
        "managedFields": [
            {
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2024-01-02T03:04:05Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}}},
            }
        ],
    }


def test_configmap_maps_and_immutable_false() -> None:
    raw = m(
        f(1, go_empty_meta("c")),
        f(2, entry("a", "b")),
        f(2, f(1, "no-value")),
        f(3, entry("bin", b"\x00\xff\x10")),
        f(4, 0),
    )
    assert decode_protobuf_object(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "b", "no-value": ""},
        "binaryData": {"bin": base64.b64encode(b"\x00\xff\x10").decode()},
        "immutable": False,
    }


def test_secret_fields() -> None:
    raw = m(
        f(1, go_empty_meta("s")),
        f(2, entry("k", b"v")),
        f(2, entry("empty", b"")),
        f(3, "kubernetes.io/basic-auth"),
        f(4, entry("username", "admin")),
        f(5, 1),
    )
    assert decode_protobuf_object(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"k": "dg==", "empty": ""},
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": "admin"},
        "immutable": True,
    }


def test_service_account_fields() -> None:
    secret_ref = m(f(1, "Secret"), f(2, "ns"), f(3, "tok"), f(4, ""), f(5, "v1"), f(6, ""), f(7, ""))
    raw = m(f(1, go_empty_meta("sa")), f(2, secret_ref), f(3, f(1, "pull1")), f(3, f(1, "pull2")), f(4, 0))
    assert decode_protobuf_object(envelope("v1", "ServiceAccount", raw)) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa"},
        "secrets": [{"kind": "Secret", "namespace": "ns", "name": "tok", "apiVersion": "v1"}],
        "imagePullSecrets": [{"name": "pull1"}, {"name": "pull2"}],
        "automountServiceAccountToken": False,
    }


def test_cluster_role_rules_and_aggregation_with_expressions() -> None:
    rule = m(f(1, "get"), f(1, "list"), f(2, ""), f(3, "pods"), f(3, "pods/log"), f(4, "p1"))
    nonres = m(f(1, "get"), f(5, "/healthz"))
    requirement = m(f(1, "tier"), f(2, "In"), f(3, "a"), f(3, "b"))
    selector = m(f(1, entry("agg", "true")), f(2, requirement), f(2, m(f(1, "x"), f(2, "Exists"))))
    raw = m(f(1, go_empty_meta("cr")), f(2, rule), f(2, nonres), f(3, f(1, selector)))
    assert decode_protobuf_object(envelope("rbac.authorization.k8s.io/v1", "ClusterRole", raw)) == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "cr"},
        "rules": [
            {
                "verbs": ["get", "list"],
                "apiGroups": [""],
                "resources": ["pods", "pods/log"],
                "resourceNames": ["p1"],
            },
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        ],
        "aggregationRule": {
            "clusterRoleSelectors": [
                {
                    "matchLabels": {"agg": "true"},
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["a", "b"]},
                        {"key": "x", "operator": "Exists"},
                    ],
                }
            ]
        },
    }


def test_role_binding_keeps_non_omitempty_strings() -> None:
    subject = m(f(1, "Group"), f(2, ""), f(3, ""), f(4, ""))
    role_ref = m(f(1, ""), f(2, "Role"), f(3, "r"))
    raw = m(f(1, go_empty_meta("rb")), f(2, subject), f(3, role_ref))
    decoded = decode_protobuf_object(envelope("rbac.authorization.k8s.io/v1", "RoleBinding", raw))
    # Subject.kind/name and RoleRef.* have no omitempty: JSON shows them even when empty.
    assert decoded["subjects"] == [{"kind": "Group", "name": ""}]
    assert decoded["roleRef"] == {"apiGroup": "", "kind": "Role", "name": "r"}


def test_ssar_field_and_label_selector_attributes() -> None:
    field_sel = m(f(1, "spec.nodeName=n1"), f(2, m(f(1, "spec.nodeName"), f(2, "In"), f(3, "n1"))))
    label_sel = m(f(1, "app=x"), f(2, m(f(1, "app"), f(2, "NotIn"), f(3, "y"), f(3, "z"))))
    attrs = m(
        f(1, "ns"),
        f(2, "list"),
        f(3, ""),
        f(4, "v1"),
        f(5, "pods"),
        f(6, ""),
        f(7, ""),
        f(8, field_sel),
        f(9, label_sel),
    )
    raw = m(f(1, go_empty_meta("")), f(2, f(1, attrs)), f(3, m(f(1, 0), f(4, 0), f(2, ""), f(3, ""))))
    assert decode_protobuf_object(envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", raw)) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {
            "resourceAttributes": {
                "namespace": "ns",
                "verb": "list",
                "version": "v1",
                "resource": "pods",
                "fieldSelector": {
                    "rawSelector": "spec.nodeName=n1",
                    "requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["n1"]}],
                },
                "labelSelector": {
                    "rawSelector": "app=x",
                    "requirements": [{"key": "app", "operator": "NotIn", "values": ["y", "z"]}],
                },
            }
        },
        "status": {"allowed": False},
    }


def test_ssar_non_resource_attributes() -> None:
    raw = m(f(1, b""), f(2, f(2, m(f(1, "/metrics"), f(2, "get")))))
    decoded = decode_protobuf_object(envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", raw))
    assert decoded["spec"] == {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}


def test_token_request_every_spec_field() -> None:
    bound = m(f(1, "Pod"), f(2, "v1"), f(3, "p"), f(4, "uid-9"))  # proto name uID, JSON name uid
    attestation = m(f(1, "node"), f(2, m(f(1, "a"), f(1, "b"))))
    spec = m(f(1, "aud1"), f(1, "aud2"), f(4, 3600), f(3, bound), f(5, attestation))
    raw = m(f(1, go_empty_meta("")), f(2, spec), f(3, m(f(1, ""), f(2, b""))))
    assert decode_protobuf_object(envelope("authentication.k8s.io/v1", "TokenRequest", raw)) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {},
        "spec": {
            "audiences": ["aud1", "aud2"],
            "expirationSeconds": 3600,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "uid-9"},
            "attestations": {"node": ["a", "b"]},
        },
        "status": {"token": ""},
    }


def test_negative_int64() -> None:
    raw = f(2, f(4, -5))
    assert decode_protobuf_object(envelope("authentication.k8s.io/v1", "TokenRequest", raw)) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": -5},
    }


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
def test_self_subject_review_versions(version: str) -> None:
    user = m(f(1, "alice"), f(2, "u1"), f(3, "g1"), f(4, entry("scopes", m(f(1, "s1")).decode())))
    raw = m(f(1, go_empty_meta("")), f(2, f(1, user)))
    assert decode_protobuf_object(envelope(f"authentication.k8s.io/{version}", "SelfSubjectReview", raw)) == {
        "apiVersion": f"authentication.k8s.io/{version}",
        "kind": "SelfSubjectReview",
        "metadata": {},
        "status": {
            "userInfo": {"username": "alice", "uid": "u1", "groups": ["g1"], "extra": {"scopes": ["s1"]}}
        },
    }


def test_self_subject_rules_review() -> None:
    raw = m(f(1, go_empty_meta("")), f(2, f(1, "ns1")))
    assert decode_protobuf_object(envelope("authorization.k8s.io/v1", "SelfSubjectRulesReview", raw)) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "metadata": {},
        "spec": {"namespace": "ns1"},
    }


def test_unknown_fields_are_skipped_and_last_scalar_wins() -> None:
    unknown = m(f(99, "future"), f(98, 7), encode_varint(97 << 3 | FIXED32) + b"\x01\x02\x03\x04")
    meta = m(f(1, "first"), unknown, f(1, "second"))
    raw = m(f(1, meta), unknown, f(2, m(unknown, f(1, "kubernetes"))))
    decoded = decode_protobuf_object(envelope("v1", "Namespace", raw, content_type=PROTOBUF_CONTENT_TYPE))
    assert decoded == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "second"},
        "spec": {"finalizers": ["kubernetes"]},
    }


def test_empty_raw_gives_just_type_meta() -> None:
    assert decode_protobuf_object(envelope("v1", "Namespace", b"")) == {
        "apiVersion": "v1",
        "kind": "Namespace",
    }


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("v1", "Role"),
        ("authorization.k8s.io/v1beta1", "SelfSubjectAccessReview"),
        ("cdi.kubevirt.io/v1beta1", "DataVolume"),
    ],
)
def test_unsupported_kind_names_it_and_lists_the_supported_ones(api_version: str, kind: str) -> None:
    with pytest.raises(UnsupportedKindError) as info:
        decode_protobuf_object(envelope(api_version, kind, b""))
    assert (info.value.api_version, info.value.kind) == (api_version, kind)
    assert isinstance(info.value, ProtobufError)
    message = str(info.value)
    assert f"{kind} ({api_version})" in message
    assert "v1 Namespace" in message and "authorization.k8s.io/v1 SelfSubjectAccessReview" in message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "magic"),
        (b'{"kind":"Namespace"}', "magic"),
        (b"k8s\x00", "no kind"),
        (b"k8s\x00" + f(1, f(1, "v1")), "no kind"),
        (b"k8s\x00" + m(f(1, m(f(1, "v1"), f(2, "Namespace"))), f(3, "gzip")), "contentEncoding"),
        (b"k8s\x00\x0a\x7f", "runs past the end"),
        (envelope("v1", "Namespace", f(1, f(1, b"\xff\xfe"))), "not valid UTF-8"),
        (envelope("v1", "Namespace", f(1, f(1, 5))), "ObjectMeta.name: expected a length-delimited"),
        (envelope("v1", "Namespace", f(1, f(7, "three"))), "ObjectMeta.generation: expected a number"),
        (envelope("v1", "Namespace", f(1, f(8, f(1, 2**62)))), "out of range"),
        (envelope("v1", "Namespace", f(1, f(17, f(7, f(1, "{not json"))))), "fieldsV1 is not JSON"),
        (envelope("v1", "Namespace", f(2, b"\x0a")), "truncated varint"),
    ],
)
def test_malformed_bodies_raise(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message) as info:
        decode_protobuf_object(body)
    assert not isinstance(info.value, UnsupportedKindError)


# --- replay of bodies captured from real kubectl 1.32 (see test_protobuf_kubectl.py) ----------

FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.pb"))


def test_fixtures_exist() -> None:
    assert len(FIXTURE_NAMES) >= 10


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_captured_kubectl_body(name: str) -> None:
    expected: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    assert decode_protobuf_object((FIXTURES / f"{name}.pb").read_bytes()) == expected


def test_captured_secret_data_round_trips_bytes() -> None:
    decoded = decode_protobuf_object((FIXTURES / "secret_generic.pb").read_bytes())
    assert base64.b64decode(decoded["data"]["blob"]) == bytes(range(256))
    assert base64.b64decode(decoded["data"]["k"]) == b"v"
