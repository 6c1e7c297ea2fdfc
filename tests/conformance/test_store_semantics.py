"""Create/update semantics: AlreadyExists, Conflict, generateName, server-set metadata, generation, RVs."""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from typing import Any

import pytest

from tests.conformance.test_crd import install_crd, widget, widget_crd
from tests.conformance.test_watch import new_namespace, watch
from tests.support.cluster import Cluster

Obj = dict[str, Any]
GROUP = "example.com"


@pytest.fixture(scope="module")
def widgets(cluster: Cluster) -> str:
    install_crd(cluster, widget_crd(GROUP))
    return GROUP


def cms(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def create_cm(cluster: Cluster, ns: str, name: str, data: dict[str, str] | None = None) -> Obj:
    status, body, _ = cluster.request("POST", cms(ns), {"metadata": {"name": name}, "data": data or {"a": "1"}})
    assert status == 201, body
    result: Obj = body
    return result


def assert_status(body: Any, code: int, reason: str, message: str | None = None) -> None:
    assert isinstance(body, dict), body
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure", body
    assert body["code"] == code and body["reason"] == reason, body
    if message is not None:
        assert body["message"] == message


def test_create_existing_is_409_already_exists(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    create_cm(cluster, ns, "x")
    status, body, _ = cluster.request("POST", cms(ns), {"metadata": {"name": "x"}})
    assert status == 409
    assert_status(body, 409, "AlreadyExists", 'configmaps "x" already exists')
    assert body["details"] == {"name": "x", "kind": "configmaps"}


def test_create_existing_cr_names_the_group(cluster: Cluster, widgets: str) -> None:
    ns = new_namespace(cluster, "st")
    path = f"/apis/{widgets}/v1/namespaces/{ns}/widgets"
    assert cluster.request("POST", path, widget("w"))[0] == 201
    status, body, _ = cluster.request("POST", path, widget("w"))
    assert status == 409
    assert_status(body, 409, "AlreadyExists", f'widgets.{GROUP} "w" already exists')
    assert body["details"] == {"name": "w", "group": GROUP, "kind": "widgets"}


def test_update_with_stale_rv_is_409_conflict(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    old = create_cm(cluster, ns, "x")
    fresh = dict(old, data={"a": "2"})
    assert cluster.request("PUT", f"{cms(ns)}/x", fresh)[0] == 200
    stale = dict(old, data={"a": "3"})
    status, body, _ = cluster.request("PUT", f"{cms(ns)}/x", stale)
    message = ('Operation cannot be fulfilled on configmaps "x": the object has been modified; '
               "please apply your changes to the latest version and try again")
    assert status == 409
    assert_status(body, 409, "Conflict", message)
    assert body["details"] == {"name": "x", "kind": "configmaps"}
    # A merge patch that carries the stale resourceVersion is refused the same way.
    status, body, _ = cluster.request("PATCH", f"{cms(ns)}/x",
                                      {"metadata": {"resourceVersion": old["metadata"]["resourceVersion"]},
                                       "data": {"a": "4"}}, content_type="application/merge-patch+json")
    assert status == 409
    assert_status(body, 409, "Conflict", message)
    _, current, _ = cluster.request("GET", f"{cms(ns)}/x")
    assert current["data"] == {"a": "2"}


def test_stale_rv_on_cr_names_the_group(cluster: Cluster, widgets: str) -> None:
    ns = new_namespace(cluster, "st")
    path = f"/apis/{widgets}/v1/namespaces/{ns}/widgets"
    _, old, _ = cluster.request("POST", path, widget("w"))
    assert cluster.request("PUT", f"{path}/w", dict(old, spec={"size": 2}))[0] == 200
    status, body, _ = cluster.request("PUT", f"{path}/w", dict(old, spec={"size": 3}))
    assert status == 409
    assert_status(body, 409, "Conflict",
                  f'Operation cannot be fulfilled on widgets.{GROUP} "w": the object has been modified; '
                  "please apply your changes to the latest version and try again")


def test_put_without_rv_is_unconditional_for_configmaps_but_422_for_crs(cluster: Cluster, widgets: str) -> None:
    ns = new_namespace(cluster, "st")
    create_cm(cluster, ns, "x")
    status, body, _ = cluster.request("PUT", f"{cms(ns)}/x", {"metadata": {"name": "x"}, "data": {"b": "2"}})
    assert status == 200, body
    assert body["data"] == {"b": "2"}

    path = f"/apis/{widgets}/v1/namespaces/{ns}/widgets"
    assert cluster.request("POST", path, widget("w"))[0] == 201
    status, body, _ = cluster.request("PUT", f"{path}/w", widget("w", {"size": 5}))
    assert status == 422
    assert_status(body, 422, "Invalid",
                  f'Widget.{GROUP} "w" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
                  "must be specified for an update")
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                                          "message": "Invalid value: 0x0: must be specified for an update"}]


def test_generate_name_appends_five_characters(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    names = set()
    for _ in range(3):
        status, body, _ = cluster.request("POST", cms(ns), {"metadata": {"generateName": "gen-"}})
        assert status == 201, body
        name = body["metadata"]["name"]
        assert re.fullmatch(r"gen-[bcdfghjklmnpqrstvwxz2456789]{5}", name), name
        assert body["metadata"]["generateName"] == "gen-"
        names.add(name)
    assert len(names) == 3


def test_missing_name_and_generate_name_is_422(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    status, body, _ = cluster.request("POST", cms(ns), {"metadata": {}})
    assert status == 422
    assert_status(body, 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_uid_and_creation_timestamp_are_server_set_and_immutable(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    status, created, _ = cluster.request("POST", cms(ns), {"metadata": {
        "name": "x", "uid": "not-mine", "creationTimestamp": "2001-01-01T00:00:00Z", "resourceVersion": "7"}})
    assert status == 201, created
    meta = created["metadata"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", meta["uid"])
    assert meta["creationTimestamp"] != "2001-01-01T00:00:00Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["resourceVersion"] != "7"

    # A changed creationTimestamp is silently reset to the stored one.
    body = json.loads(json.dumps(created))
    body["metadata"]["creationTimestamp"] = "2001-01-01T00:00:00Z"
    status, updated, _ = cluster.request("PUT", f"{cms(ns)}/x", body)
    assert status == 200, updated
    assert updated["metadata"]["creationTimestamp"] == meta["creationTimestamp"]
    assert updated["metadata"]["uid"] == meta["uid"]

    # A changed uid is refused.
    body = json.loads(json.dumps(updated))
    body["metadata"]["uid"] = "11111111-2222-3333-4444-555555555555"
    status, err, _ = cluster.request("PUT", f"{cms(ns)}/x", body)
    assert status == 422, err
    assert_status(err, 422, "Invalid")
    assert [c["field"] for c in err["details"]["causes"]] == ["metadata.uid"]
    assert err["details"]["causes"][0]["message"].endswith("field is immutable")


def test_generation_on_cr_with_status_subresource(cluster: Cluster, widgets: str) -> None:
    ns = new_namespace(cluster, "st")
    path = f"/apis/{widgets}/v1/namespaces/{ns}/widgets"
    _, obj, _ = cluster.request("POST", path, widget("g"))
    assert obj["metadata"]["generation"] == 1

    def patch(sub: str, body: Obj) -> Obj:
        status, result, _ = cluster.request("PATCH", f"{path}/g{sub}", body,
                                            content_type="application/merge-patch+json")
        assert status == 200, result
        out: Obj = result
        return out

    assert patch("", {"spec": {"size": 2}})["metadata"]["generation"] == 2
    # Metadata changes and status writes leave generation alone.
    assert patch("", {"metadata": {"labels": {"a": "b"}, "annotations": {"c": "d"}}})["metadata"]["generation"] == 2
    assert patch("/status", {"status": {"phase": "Ready"}})["metadata"]["generation"] == 2
    # A no-op spec write does not bump it either.
    assert patch("", {"spec": {"size": 2}})["metadata"]["generation"] == 2
    assert patch("", {"spec": {"color": "blue"}})["metadata"]["generation"] == 3


def test_resource_version_is_global_and_increasing_across_kinds(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    rvs = [int(create_cm(cluster, ns, "a")["metadata"]["resourceVersion"])]
    status, secret, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "s"}})
    assert status == 201
    rvs.append(int(secret["metadata"]["resourceVersion"]))
    rvs.append(int(create_cm(cluster, ns, "b")["metadata"]["resourceVersion"]))
    status, sa, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                                    {"metadata": {"name": "robot"}})
    assert status == 201
    rvs.append(int(sa["metadata"]["resourceVersion"]))
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)

    _, listing, _ = cluster.request("GET", cms(ns))
    list_rv = int(listing["metadata"]["resourceVersion"])
    assert list_rv >= max(int(i["metadata"]["resourceVersion"]) for i in listing["items"])
    # The list RV is global: it also covers the serviceaccount written after the last configmap.
    assert list_rv >= rvs[-1]


def raw_post(cluster: Cluster, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """A POST with exactly these headers (urllib would add a form Content-Type of its own)."""
    url = urllib.parse.urlsplit(cluster.server)
    conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=cluster.ssl_context(), timeout=30)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {cluster.token}")
        conn.putheader("Content-Length", str(len(body)))
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_post_without_content_type_is_json(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    status, body = raw_post(cluster, cms(ns), json.dumps({"metadata": {"name": "noct"}, "data": {"k": "v"}})
                            .encode(), {})
    assert status == 201, body
    assert body["metadata"]["name"] == "noct" and body["data"] == {"k": "v"}


def test_unknown_content_type_is_415(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    status, body = raw_post(cluster, cms(ns), b"name: x", {"Content-Type": "text/plain"})
    assert status == 415, body
    assert_status(body, 415, "UnsupportedMediaType")


def test_malformed_json_is_400(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    status, body, _ = cluster.request("POST", cms(ns), raw=b'{"metadata": {"name": ')
    assert status == 400, body
    assert_status(body, 400, "BadRequest")


def test_create_in_missing_namespace_is_404(cluster: Cluster) -> None:
    status, body, _ = cluster.request("POST", cms("does-not-exist"), {"metadata": {"name": "x"}})
    assert status == 404
    assert_status(body, 404, "NotFound", 'namespaces "does-not-exist" not found')
    assert body["details"] == {"name": "does-not-exist", "kind": "namespaces"}


def test_create_in_terminating_namespace_is_403(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "st")
    # A finalizer nobody removes keeps the namespace in Terminating while we look.
    status, _, _ = cluster.request("POST", cms(ns), {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    assert status == 201
    status, body, _ = cluster.request("DELETE", f"/api/v1/namespaces/{ns}")
    assert status == 200 and body["status"]["phase"] == "Terminating"
    status, body, _ = cluster.request("POST", cms(ns), {"metadata": {"name": "late"}})
    assert status == 403
    assert_status(body, 403, "Forbidden",
                  f'configmaps "late" is forbidden: unable to create new content in namespace {ns} '
                  "because it is being terminated")
    assert body["details"]["causes"] == [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                          "message": f"namespace {ns} is being terminated"}]
    # Let the namespace go, and see it disappear.
    _, ns_obj, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}")
    with watch(cluster, "/api/v1/namespaces", fieldSelector=f"metadata.name={ns}",
               resourceVersion=ns_obj["metadata"]["resourceVersion"], timeoutSeconds="60") as w:
        status, _, _ = cluster.request("PATCH", f"{cms(ns)}/held", {"metadata": {"finalizers": None}},
                                       content_type="application/merge-patch+json")
        assert status == 200
        w.until(lambda e: e["type"] == "DELETED")


def test_every_error_is_a_status(cluster: Cluster) -> None:
    cases = [
        ("GET", "/api/v1/namespaces/default/configmaps/missing", 404, "NotFound"),
        ("GET", "/api/v1/nonsense", 404, "NotFound"),
        ("GET", "/apis/nothing.example.com/v1/things", 404, "NotFound"),
        ("PATCH", "/api/v1/namespaces/default/configmaps", 405, "MethodNotAllowed"),
        ("POST", "/api/v1/namespaces/default/configmaps/somename", 405, "MethodNotAllowed"),
    ]
    for method, path, code, reason in cases:
        status, body, _ = cluster.request(method, path, {} if method != "GET" else None,
                                          content_type="application/merge-patch+json")
        assert status == code, (method, path, body)
        assert_status(body, code, reason)
    status, body, _ = cluster.request("GET", "/api/v1/namespaces", token="wrong")
    assert status == 401
    assert_status(body, 401, "Unauthorized", "Unauthorized")
    status, body, _ = cluster.request("GET", "/api/v1/namespaces/default/configmaps/missing")
    assert body["message"] == 'configmaps "missing" not found'
    assert body["details"] == {"name": "missing", "kind": "configmaps"}
