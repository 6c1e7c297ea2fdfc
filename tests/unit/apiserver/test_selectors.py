"""Label and field selectors: syntax, kube's error messages, matching and supported field labels."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.cluster.apiserver.selectors import (
    SelectorError,
    escape_field_value,
    field_value,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
    supported_fields,
)

LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
QUALIFIED_MSG = (
    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. "
    "'example.com/MyName')"
)

LABELS = {"app": "demo", "tier": "db", "env": "", "n": "5"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=demo", True),
        ("app==demo", True),
        ("app=other", False),
        ("app!=other", True),
        ("app!=demo", False),
        ("missing!=x", True),
        ("app in (demo,x)", True),
        ("app in (x,y)", False),
        ("app notin (x)", True),
        ("app notin (demo)", False),
        ("missing notin (x)", True),
        ("missing in (x)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=demo,tier=db", True),
        ("app=demo,tier=web", False),
        ("  app = demo ,  tier  in  ( db , web ) ", True),
        ("env=", True),
        ("env in ()", True),
        ("env in (,x)", True),
        ("app in (x,)", False),
        ("in in (in)", False),
        ("n>4", True),
        ("n<4", False),
        ("n>5", False),
        ("example.com/key", False),
        ("app=demo,!missing", True),
    ],
)
def test_label_selector_matching(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a b", "unable to parse requirement: found 'b', expected: in, !=, ==, =, gt, lt, notin"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a=(b", "unable to parse requirement: found '(', expected: identifier"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b@", f'unable to parse requirement: values[0][a]: Invalid value: "b@": {LABEL_VALUE_MSG}'),
        ("a/b/c", f'unable to parse requirement: <nil>: Invalid value: "a/b/c": {QUALIFIED_MSG}'),
        (
            "n>x",
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the "
            "value must be an integer",
        ),
        ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
    ],
)
def test_label_selector_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_label_selector(selector)
    assert str(exc.value) == message


def test_label_selector_is_sorted_and_empty_flag() -> None:
    sel = parse_label_selector("b=1,a=2")
    assert [r.key for r in sel.requirements] == ["a", "b"]
    assert not sel.empty
    assert parse_label_selector("").empty


def test_label_selector_from_dict() -> None:
    assert not label_selector_from_dict(None).matches({})
    assert not label_selector_from_dict(None).empty
    assert label_selector_from_dict({}).matches({"x": "y"})
    assert label_selector_from_dict({}).empty
    sel = label_selector_from_dict(
        {
            "matchLabels": {"app": "demo"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["db"]},
                {"key": "gone", "operator": "DoesNotExist"},
            ],
        }
    )
    assert sel.matches(LABELS)
    assert not sel.matches({"app": "demo", "tier": "web"})
    assert label_selector_from_dict({"matchExpressions": [{"key": "app", "operator": "Exists"}]}).matches(
        LABELS
    )
    assert label_selector_from_dict(
        {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["x"]}]}
    ).matches(LABELS)


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
            '"Equals" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        ({"matchLabels": {"a": "b c"}}, f'values[0][a]: Invalid value: "b c": {LABEL_VALUE_MSG}'),
    ],
)
def test_label_selector_from_dict_errors(sel: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        label_selector_from_dict(sel)
    assert str(exc.value) == message


POD = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "p1", "namespace": "ns"},
    "spec": {"nodeName": "node1", "restartPolicy": "Never"},
    "status": {"phase": "Running"},
}
POD_FIELDS = supported_fields("", "pods")


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("metadata.name=p1", True),
        ("metadata.name==p1", True),
        ("metadata.name!=p1", False),
        ("metadata.name=p2", False),
        ("metadata.namespace=ns,status.phase=Running", True),
        ("status.phase=Running,spec.nodeName=other", False),
        ("spec.schedulerName=", True),
        ("spec.hostNetwork=false", True),
        ("spec.restartPolicy!=Always", True),
        ("status.podIP=", True),
    ],
)
def test_field_selector_matching(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector, POD_FIELDS).matches(POD) is matches


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("spec.foo=bar", "field label not supported: spec.foo"),
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
        ("metadata.name=a,b", "invalid selector: 'metadata.name=a,b'; can't understand 'b'"),
        ("metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_field_selector(selector, POD_FIELDS)
    assert str(exc.value) == message


def test_field_selector_escaping_and_value_for() -> None:
    value = "a,b=c\\d"
    sel = parse_field_selector(f"metadata.name={escape_field_value(value)},metadata.namespace!=x", POD_FIELDS)
    assert sel.value_for("metadata.name") == value
    assert sel.value_for("metadata.namespace") is None
    assert sel.matches({"metadata": {"name": value, "namespace": "y"}})
    assert parse_field_selector("", POD_FIELDS).empty
    assert parse_field_selector("metadata.name=,", POD_FIELDS).value_for("metadata.name") == ""


def test_field_value_paths() -> None:
    assert field_value(POD, "metadata.name") == "p1"
    assert field_value(POD, "spec.missing.deeper") == ""
    assert field_value({"kind": "Node", "spec": {}}, "spec.unschedulable") == "false"
    assert field_value({"kind": "Node", "spec": {"unschedulable": True}}, "spec.unschedulable") == "true"
    core_event = {
        "kind": "Event",
        "apiVersion": "v1",
        "source": {"component": "kubelet"},
        "involvedObject": {"kind": "Pod", "name": "p1"},
    }
    assert field_value(core_event, "source") == "kubelet"
    assert field_value(core_event, "involvedObject.kind") == "Pod"
    new_event = {
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "regarding": {"uid": "u1"},
        "reportingController": "ctrl",
        "deprecatedSource": {"component": "c"},
    }
    assert field_value(new_event, "involvedObject.uid") == "u1"
    assert field_value(new_event, "reportingComponent") == "ctrl"
    assert field_value(new_event, "source") == "c"


def test_supported_fields() -> None:
    base = {"metadata.name", "metadata.namespace"}
    assert supported_fields("cdi.kubevirt.io", "datavolumes") == base
    assert supported_fields("", "persistentvolumeclaims") == base
    assert {
        "involvedObject.uid",
        "involvedObject.kind",
        "reason",
        "type",
        "source",
        "reportingComponent",
    } <= supported_fields("", "events")
    assert {"spec.nodeName", "status.phase", "spec.serviceAccountName"} <= POD_FIELDS
    assert supported_fields("", "secrets") == base | {"type"}
    assert supported_fields("", "namespaces") == base | {"status.phase"}
    assert supported_fields("", "nodes") == base | {"spec.unschedulable"}
    with pytest.raises(SelectorError, match="field label not supported: type"):
        parse_field_selector("type=Opaque", supported_fields("", "configmaps"))
