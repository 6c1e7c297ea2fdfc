"""Server-side apply and managedFields tracking: ownership, pruning, conflicts, force."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pycdi.cluster.apiserver.patching import (
    ApplyConflict,
    builtin_list_map_keys,
    server_side_apply,
    update_managed_fields,
)

T0, T1, T2 = "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"
POD_KEYS = builtin_list_map_keys("Pod")


def cm(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"},
            "data": dict(data)}


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"]["managedFields"]}


def test_apply_create_records_fields_v1() -> None:
    out = server_side_apply(None, cm(a="1", b="2"), "kubectl", False, "v1", now=T0)
    assert out["data"] == {"a": "1", "b": "2"}
    (entry,) = out["metadata"]["managedFields"]
    assert entry == {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T0,
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}}}


def test_apply_lists_keyed_by_merge_keys() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["x"]},
           "spec": {"containers": [{"name": "main", "image": "i", "ports": [
               {"containerPort": 80, "protocol": "TCP"}]}]}}
    out = server_side_apply(None, pod, "mgr", False, "v1", list_map_keys=POD_KEYS, now=T0)
    fields = out["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields["f:metadata"] == {"f:finalizers": {'v:"x"': {}}}
    container = fields["f:spec"]["f:containers"]['k:{"name":"main"}']
    assert container == {".": {}, "f:image": {}, "f:name": {},
                         "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                             ".": {}, "f:containerPort": {}, "f:protocol": {}}}}


def test_reapply_without_a_field_removes_it() -> None:
    live = server_side_apply(None, cm(a="1", b="2"), "kubectl", False, "v1", now=T0)
    out = server_side_apply(live, cm(a="1"), "kubectl", False, "v1", now=T1)
    assert out["data"] == {"a": "1"}
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert out["metadata"]["managedFields"][0]["time"] == T1


def test_removed_field_kept_when_another_manager_owns_it() -> None:
    live = server_side_apply(None, cm(a="1", b="2"), "one", False, "v1", now=T0)
    live = server_side_apply(live, cm(b="2"), "two", False, "v1", now=T1)  # same value: shared
    out = server_side_apply(live, cm(a="1"), "one", False, "v1", now=T2)
    assert out["data"] == {"a": "1", "b": "2"}
    assert entries(out)[("two", "Apply")]["fieldsV1"] == {"f:data": {"f:b": {}}}


def test_conflict_with_another_applier_and_force() -> None:
    live = server_side_apply(None, cm(a="1"), "one", False, "v1", now=T0)
    with pytest.raises(ApplyConflict) as info:
        server_side_apply(live, cm(a="2"), "two", False, "v1", now=T1)
    err = info.value
    assert err.conflicts == [("one", ".data.a")]
    assert err.message() == 'Apply failed with 1 conflict: conflict with "one": .data.a'
    assert err.causes() == [{"reason": "FieldManagerConflict", "message": 'conflict with "one"',
                             "field": ".data.a"}]
    status = err.api_error().status()
    assert status["code"] == 409 and status["reason"] == "Conflict"
    out = server_side_apply(live, cm(a="2"), "two", True, "v1", now=T1)
    assert out["data"] == {"a": "2"}
    assert set(entries(out)) == {("two", "Apply")}  # "one" owned nothing else and is dropped


def test_conflict_with_update_manager_like_kubectl_client_side_apply() -> None:
    dep = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
           "data": {"replicas": "1", "x": "y"}}
    created = copy.deepcopy(dep)
    update_managed_fields(None, created, "kubectl-client-side-apply", "v1", T0)
    assert entries(created)[("kubectl-client-side-apply", "Update")]["fieldsV1"] == {
        "f:data": {".": {}, "f:replicas": {}, "f:x": {}}}
    applied = copy.deepcopy(dep)
    applied["data"] = {"replicas": "3", "x": "z"}
    with pytest.raises(ApplyConflict) as info:
        server_side_apply(created, applied, "kubectl", False, "v1", now=T1)
    err = info.value
    assert err.message() == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using v1:\n'
        "- .data.replicas\n- .data.x")
    assert [c["message"] for c in err.causes()] == ['conflict with "kubectl-client-side-apply" using v1'] * 2
    # Applying the same values is no conflict; ownership is then shared.
    same = server_side_apply(created, dep, "kubectl", False, "v1", now=T1)
    assert same["data"] == dep["data"]
    assert ("kubectl-client-side-apply", "Update") in entries(same)


def test_update_takes_ownership_from_others() -> None:
    live = server_side_apply(None, cm(a="1", b="2"), "applier", False, "v1", now=T0)
    new = copy.deepcopy(live)
    new["data"]["a"] = "changed"
    new["data"]["c"] = "3"
    update_managed_fields(live, new, "editor", "v1", T1)
    by = entries(new)
    assert by[("applier", "Apply")]["fieldsV1"] == {"f:data": {"f:b": {}}}
    assert by[("editor", "Update")]["fieldsV1"] == {"f:data": {"f:a": {}, "f:c": {}}}
    assert [e["operation"] for e in new["metadata"]["managedFields"]] == ["Apply", "Update"]
    # Re-applying the old value now conflicts with the editor.
    with pytest.raises(ApplyConflict) as info:
        server_side_apply(new, cm(a="1", b="2"), "applier", False, "v1", now=T2)
    assert info.value.conflicts == [("editor", ".data.a")]


def test_update_managed_fields_never_records_bookkeeping_and_drops_removed() -> None:
    old: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "c", "uid": "u", "resourceVersion": "1", "creationTimestamp": T0, "labels": {"a": "1"}}}
    update_managed_fields(None, old, "creator", "v1", T0)
    fields = old["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields == {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]
    new["metadata"]["annotations"] = {"n": "v"}
    update_managed_fields(old, new, "creator", "v1", T1, subresource="")
    assert new["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:annotations": {".": {}, "f:n": {}}}}
    status = copy.deepcopy(new)
    status["status"] = {"phase": "Bound"}
    update_managed_fields(new, status, "ctrl", "v1", T2, subresource="status")
    entry = entries(status)[("ctrl", "Update")]
    assert entry["subresource"] == "status" and entry["fieldsV1"] == {"f:status": {"f:phase": {}}}


def test_apply_merges_keyed_lists_with_other_owners() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "a:1"}]}}
    live = server_side_apply(None, pod, "one", False, "v1", list_map_keys=POD_KEYS, now=T0)
    other = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
             "spec": {"containers": [{"name": "b", "image": "b:1"}]}}
    live = server_side_apply(live, other, "two", False, "v1", list_map_keys=POD_KEYS, now=T1)
    assert [c["name"] for c in live["spec"]["containers"]] == ["a", "b"]
    # "one" stops applying container a: it is pruned, b (owned by two) stays.
    empty = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"x": "1"}}}
    out = server_side_apply(live, empty, "one", False, "v1", list_map_keys=POD_KEYS, now=T2)
    assert [c["name"] for c in out["spec"]["containers"]] == ["b"]
    with pytest.raises(ApplyConflict) as info:
        server_side_apply(out, {**other, "spec": {"containers": [{"name": "b", "image": "b:2"}]}}, "one",
                          False, "v1", list_map_keys=POD_KEYS, now=T2)
    assert info.value.conflicts == [("two", '.spec.containers[name="b"].image')]


def test_first_apply_on_untracked_object_conflicts_with_before_first_apply() -> None:
    live = cm(a="1")
    with pytest.raises(ApplyConflict) as info:
        server_side_apply(live, cm(a="2"), "kubectl", False, "v1", now=T0)
    assert info.value.printed == ['"before-first-apply" using v1']
