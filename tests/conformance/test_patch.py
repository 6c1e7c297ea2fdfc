"""Patch types (merge, JSON, strategic, apply), dryRun and fieldValidation, with kube's codes and messages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.test_crd import install_crd, widget, widget_crd
from tests.conformance.test_watch import new_namespace
from tests.support.cluster import Cluster

Obj = dict[str, Any]
GROUP = "patch.example.com"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


@pytest.fixture(scope="module")
def widgets(cluster: Cluster) -> str:
    install_crd(cluster, widget_crd(GROUP))
    return GROUP


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def make_cm(cluster: Cluster, ns: str, name: str, data: dict[str, str]) -> Obj:
    status, body, _ = cluster.request("POST", cm_path(ns), {"metadata": {"name": name}, "data": data})
    assert status == 201, body
    result: Obj = body
    return result


def patch(cluster: Cluster, path: str, body: Any, content_type: str, query: str = "") -> tuple[int, Any, Any]:
    return cluster.request("PATCH", path + (f"?{query}" if query else ""), body, content_type=content_type)


# ---- merge and JSON patch ------------------------------------------------------------------------------


def test_merge_patch_sets_and_deletes_with_null(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    make_cm(cluster, ns, "m", {"a": "1", "b": "2"})
    status, body, _ = patch(cluster, cm_path(ns, "m"), {"data": {"a": None, "c": "3"},
                                                         "metadata": {"labels": {"x": "y"}}}, MERGE)
    assert status == 200, body
    assert body["data"] == {"b": "2", "c": "3"} and body["metadata"]["labels"] == {"x": "y"}


def test_patch_missing_object_is_404(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    status, body, _ = patch(cluster, cm_path(ns, "nope"), {"data": {"a": "1"}}, MERGE)
    assert status == 404
    assert body["reason"] == "NotFound" and body["message"] == 'configmaps "nope" not found'


def test_json_patch_operations(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    created = make_cm(cluster, ns, "j", {"a": "1", "b": "2"})
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": created["metadata"]["resourceVersion"]},
        {"op": "add", "path": "/data/c", "value": "3"},
        {"op": "remove", "path": "/data/a"},
        {"op": "replace", "path": "/data/b", "value": "22"},
        {"op": "copy", "from": "/data/c", "path": "/data/d"},
        {"op": "move", "from": "/data/c", "path": "/data/e"},
    ]
    status, body, _ = patch(cluster, cm_path(ns, "j"), ops, JSONPATCH)
    assert status == 200, body
    assert body["data"] == {"b": "22", "d": "3", "e": "3"}


def test_json_patch_failed_test_is_422(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    make_cm(cluster, ns, "j", {"a": "1"})
    # What kopf sends for optimistic locking: a test on the resourceVersion.
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
           {"op": "replace", "path": "/data/a", "value": "2"}]
    status, body, _ = patch(cluster, cm_path(ns, "j"), ops, JSONPATCH)
    assert status == 422, body
    assert body["kind"] == "Status" and body["reason"] == "Invalid" and body["code"] == 422
    # Removing a missing path fails the same way.
    status, body, _ = patch(cluster, cm_path(ns, "j"), [{"op": "remove", "path": "/data/zzz"}], JSONPATCH)
    assert status == 422, body
    _, current, _ = cluster.request("GET", cm_path(ns, "j"))
    assert current["data"] == {"a": "1"}


@pytest.mark.parametrize("raw", [b'{"op": "add"}', b"[{]", b'"just a string"'])
def test_malformed_json_patch_is_400(cluster: Cluster, raw: bytes) -> None:
    ns = new_namespace(cluster, "p")
    make_cm(cluster, ns, "j", {"a": "1"})
    status, body, _ = cluster.request("PATCH", cm_path(ns, "j"), raw=raw, content_type=JSONPATCH)
    assert status == 400, body
    assert body["kind"] == "Status" and body["reason"] == "BadRequest" and body["code"] == 400


# ---- strategic merge patch ------------------------------------------------------------------------------


def test_strategic_merge_on_builtin_merges_lists_by_key(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/services", {
        "metadata": {"name": "svc"}, "spec": {"selector": {"app": "x"}, "ports": [{"name": "a", "port": 80}]}})
    assert status == 201, body
    path = f"/api/v1/namespaces/{ns}/services/svc"
    status, body, _ = patch(cluster, path, {"spec": {"ports": [{"name": "b", "port": 81}]}}, STRATEGIC)
    assert status == 200, body
    assert sorted((p["name"], p["port"]) for p in body["spec"]["ports"]) == [("a", 80), ("b", 81)]
    # The same body as a merge patch replaces the whole list.
    status, body, _ = patch(cluster, path, {"spec": {"ports": [{"name": "c", "port": 82}]}}, MERGE)
    assert status == 200, body
    assert [(p["name"], p["port"]) for p in body["spec"]["ports"]] == [("c", 82)]
    # $patch: delete removes one element by its merge key.
    patch(cluster, path, {"spec": {"ports": [{"name": "d", "port": 83}]}}, STRATEGIC)
    status, body, _ = patch(cluster, path, {"spec": {"ports": [{"port": 82, "$patch": "delete"}]}}, STRATEGIC)
    assert status == 200, body
    assert [p["port"] for p in body["spec"]["ports"]] == [83]


def test_strategic_merge_on_pod_containers(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", {
        "metadata": {"name": "pod"},
        "spec": {"containers": [{"name": "a", "image": "img:1"}, {"name": "b", "image": "img:1"}]}})
    assert status == 201, body
    status, body, _ = patch(cluster, f"/api/v1/namespaces/{ns}/pods/pod",
                            {"spec": {"containers": [{"name": "b", "image": "img:2"}]}}, STRATEGIC)
    assert status == 200, body
    assert [(c["name"], c["image"]) for c in body["spec"]["containers"]] == [("a", "img:1"), ("b", "img:2")]


def test_strategic_merge_on_cr_is_415(cluster: Cluster, widgets: str) -> None:
    ns = new_namespace(cluster, "p")
    path = f"/apis/{widgets}/v1/namespaces/{ns}/widgets"
    assert cluster.request("POST", path, widget("w", group=widgets))[0] == 201
    status, body, _ = patch(cluster, f"{path}/w", {"spec": {"size": 3}}, STRATEGIC)
    assert status == 415
    assert body["kind"] == "Status" and body["reason"] == "UnsupportedMediaType" and body["code"] == 415
    assert body["message"] == ("the body of the request was in an unknown format - accepted media types include: "
                               "application/json-patch+json, application/merge-patch+json, "
                               "application/apply-patch+yaml")


# ---- server-side apply ------------------------------------------------------------------------------------


def applied(ns: str, name: str, data: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def test_apply_creates_when_absent_and_tracks_managed_fields(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    status, body, _ = patch(cluster, cm_path(ns, "sa"), applied(ns, "sa", {"k": "1"}), APPLY, "fieldManager=alice")
    assert status == 201, body
    assert body["data"] == {"k": "1"}
    entries = body["metadata"]["managedFields"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["manager"] == "alice" and entry["operation"] == "Apply" and entry["apiVersion"] == "v1"
    assert entry["fieldsType"] == "FieldsV1" and entry["fieldsV1"] == {"f:data": {"f:k": {}}}
    assert entry["time"]
    # Applying again, unchanged, is 200 and no new revision.
    status, again, _ = patch(cluster, cm_path(ns, "sa"), applied(ns, "sa", {"k": "1"}), APPLY, "fieldManager=alice")
    assert status == 200
    assert again["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]


def test_apply_accepts_yaml_body(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  namespace: {ns}\ndata:\n  k: 'v'\n"
    status, body, _ = cluster.request("PATCH", cm_path(ns, "y") + "?fieldManager=yaml", raw=text.encode(),
                                      content_type=APPLY)
    assert status == 201, body
    assert body["data"] == {"k": "v"}


def test_apply_without_field_manager_is_400(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    status, body, _ = patch(cluster, cm_path(ns, "x"), applied(ns, "x", {"k": "1"}), APPLY)
    assert status == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == ("PATCH requests with Content-Type application/apply-patch+yaml must have a "
                               "fieldManager query parameter")


def test_apply_conflict_between_managers_and_force(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    path = cm_path(ns, "c")
    assert patch(cluster, path, applied(ns, "c", {"k": "1", "mine": "a"}), APPLY, "fieldManager=alice")[0] == 201
    status, body, _ = patch(cluster, path, applied(ns, "c", {"k": "2"}), APPLY, "fieldManager=bob")
    assert status == 409
    assert body["kind"] == "Status" and body["reason"] == "Conflict" and body["code"] == 409
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.k'
    assert body["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.k"}]
    # Applying the same value is not a conflict: both managers then share the field.
    status, body, _ = patch(cluster, path, applied(ns, "c", {"k": "1"}), APPLY, "fieldManager=carol")
    assert status == 200, body
    # force=true takes the field over.
    status, body, _ = patch(cluster, path, applied(ns, "c", {"k": "2"}), APPLY, "fieldManager=bob&force=true")
    assert status == 200, body
    assert body["data"] == {"k": "2", "mine": "a"}
    managers = {e["manager"]: e for e in body["metadata"]["managedFields"]}
    assert managers["bob"]["fieldsV1"] == {"f:data": {"f:k": {}}}
    assert managers["alice"]["fieldsV1"] == {"f:data": {"f:mine": {}}}
    assert "carol" not in managers  # carol owned only .data.k, now bob's


def test_apply_removes_fields_the_manager_dropped(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    path = cm_path(ns, "d")
    patch(cluster, path, applied(ns, "d", {"a": "1", "b": "2"}), APPLY, "fieldManager=alice")
    status, body, _ = patch(cluster, path, applied(ns, "d", {"a": "1"}), APPLY, "fieldManager=alice")
    assert status == 200, body
    assert body["data"] == {"a": "1"}


def test_update_conflicting_with_apply_is_allowed(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    path = cm_path(ns, "u")
    patch(cluster, path, applied(ns, "u", {"k": "1"}), APPLY, "fieldManager=alice")
    # Non-apply writes never conflict; they take ownership instead.
    status, body, _ = patch(cluster, path, {"data": {"k": "2"}}, MERGE, "fieldManager=editor")
    assert status == 200, body
    managers = {e["manager"]: e for e in body["metadata"]["managedFields"]}
    assert managers["editor"]["operation"] == "Update"
    assert managers["editor"]["fieldsV1"] == {"f:data": {"f:k": {}}}


# ---- dryRun ------------------------------------------------------------------------------------------------


def test_dry_run_stores_nothing(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    status, body, _ = cluster.request("POST", cm_path(ns) + "?dryRun=All",
                                      {"metadata": {"name": "dry"}, "data": {"a": "1"}})
    assert status == 201, body
    assert body["metadata"]["name"] == "dry" and body["metadata"]["uid"]
    assert cluster.request("GET", cm_path(ns, "dry"))[0] == 404

    real = make_cm(cluster, ns, "real", {"a": "1"})
    rv = real["metadata"]["resourceVersion"]
    status, body, _ = cluster.request("PUT", cm_path(ns, "real") + "?dryRun=All", dict(real, data={"a": "2"}))
    assert status == 200 and body["data"] == {"a": "2"}
    status, body, _ = patch(cluster, cm_path(ns, "real"), {"data": {"a": "3"}}, MERGE, "dryRun=All")
    assert status == 200 and body["data"] == {"a": "3"}
    status, body, _ = patch(cluster, cm_path(ns, "real"), applied(ns, "real", {"a": "4"}), APPLY,
                            "dryRun=All&fieldManager=x&force=true")
    assert status == 200 and body["data"] == {"a": "4"}
    status, body, _ = cluster.request("DELETE", cm_path(ns, "real") + "?dryRun=All")
    assert status == 200
    status, current, _ = cluster.request("GET", cm_path(ns, "real"))
    assert status == 200
    assert current["data"] == {"a": "1"} and current["metadata"]["resourceVersion"] == rv


def test_bad_dry_run_value_is_400(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    status, body, _ = cluster.request("POST", cm_path(ns) + "?dryRun=Some", {"metadata": {"name": "x"}})
    assert status == 400, body
    assert body["reason"] == "BadRequest"


# ---- fieldValidation ----------------------------------------------------------------------------------------


def test_strict_unknown_field_on_cr_is_400(cluster: Cluster, widgets: str) -> None:
    ns = new_namespace(cluster, "p")
    path = f"/apis/{widgets}/v1/namespaces/{ns}/widgets"
    status, body, _ = cluster.request("POST", path + "?fieldValidation=Strict",
                                      widget("s", {"size": 1, "foo": 1}, group=widgets))
    assert status == 400, body
    assert body["reason"] == "BadRequest"
    assert body["message"] == ('Widget in version "v1" cannot be handled as a Widget: '
                               'strict decoding error: unknown field "spec.foo"')
    assert cluster.request("POST", path, widget("s", group=widgets))[0] == 201
    status, body, _ = patch(cluster, f"{path}/s", {"spec": {"foo": 1}}, MERGE, "fieldValidation=Strict")
    assert status == 400
    assert body["message"].endswith('strict decoding error: unknown field "spec.foo"')


def test_warn_unknown_field_on_cr_is_accepted_with_warning(cluster: Cluster, widgets: str) -> None:
    ns = new_namespace(cluster, "p")
    path = f"/apis/{widgets}/v1/namespaces/{ns}/widgets"
    status, body, headers = cluster.request("POST", path + "?fieldValidation=Warn",
                                            widget("w", {"size": 1, "foo": 1}, group=widgets))
    assert status == 201, body
    assert "foo" not in body["spec"]
    assert headers.get("Warning") == '299 - "unknown field \\"spec.foo\\""'
    status, body, headers = cluster.request("POST", path + "?fieldValidation=Ignore",
                                            widget("i", {"size": 1, "foo": 1}, group=widgets))
    assert status == 201 and "foo" not in body["spec"] and "Warning" not in headers


def test_kubectl_shows_the_warning(cluster: Cluster, widgets: str) -> None:
    ns = new_namespace(cluster, "p")
    manifest = (f"apiVersion: {widgets}/v1\nkind: Widget\nmetadata:\n  name: kw\n  namespace: {ns}\n"
                "spec:\n  size: 1\n  foo: 1\n")
    result = cluster.kubectl("create", "--validate=warn", "-f", "-", input=manifest)
    assert 'Warning: unknown field "spec.foo"' in result.stderr


def test_duplicate_json_field_with_strict_is_400(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    raw = b'{"metadata": {"name": "dup"}, "data": {"a": "1"}, "data": {"b": "2"}}'
    status, body, _ = cluster.request("POST", cm_path(ns) + "?fieldValidation=Strict", raw=raw)
    assert status == 400, body
    assert body["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                               'strict decoding error: duplicate field "data"')
    assert cluster.request("GET", cm_path(ns, "dup"))[0] == 404


def test_strict_unknown_field_on_builtin_is_400(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "p")
    status, body, _ = cluster.request("POST", cm_path(ns) + "?fieldValidation=Strict",
                                      {"metadata": {"name": "u"}, "bogus": 1})
    assert status == 400, body
    assert body["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                               'strict decoding error: unknown field "bogus"')
