"""Bad requests: each answers a 4xx `Status` as kube-apiserver does, and leaves the store exactly as it was."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.cluster import Cluster

_counter = itertools.count()
CDI = "/apis/cdi.kubevirt.io/v1beta1"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
#: Objects the control plane adds to every namespace on its own; not part of what a test compares.
AUTOMATIC = {"kube-root-ca.crt", "default"}


def _configmap(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}, **extra}


def _datavolume(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": name},
            # A sourceRef to no DataSource: no controller writes to it, so revisions stay the test's own.
            "spec": spec or {"sourceRef": {"kind": "DataSource", "name": "not-there"},
                             "storage": {"resources": {"requests": {"storage": "1Mi"}}}}}


class Namespace:
    """A fresh namespace holding one ConfigMap and one RoleBinding, and a snapshot of what it stores."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.name = f"bad-{next(_counter)}"
        self.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.name}})
        self.cm = f"/api/v1/namespaces/{self.name}/configmaps"
        self.dv = f"{CDI}/namespaces/{self.name}/datavolumes"
        self.pvc = f"/api/v1/namespaces/{self.name}/persistentvolumeclaims"
        self.rb = f"{RBAC}/namespaces/{self.name}/rolebindings"
        self.post(self.cm, _configmap("keep"))
        self.post(self.rb, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "someone"}]})

    def post(self, path: str, body: Any) -> dict[str, Any]:
        status, out, _ = self.cluster.request("POST", path, body)
        assert status == 201, out
        assert isinstance(out, dict)
        return out

    def snapshot(self) -> dict[str, dict[str, str]]:
        """name -> resourceVersion for every kind these tests write to, in this namespace."""
        out: dict[str, dict[str, str]] = {}
        for path in (self.cm, self.dv, self.pvc, self.rb):
            status, body, _ = self.cluster.request("GET", path)
            assert status == 200, body
            out[path] = {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in body["items"]
                         if i["metadata"]["name"] not in AUTOMATIC}
        return out

    def rejected(self, method: str, path: str, body: Any = None, *, code: int, reason: str,
                 message: str = "", **kwargs: Any) -> dict[str, Any]:
        """Send a request that must fail with `code`/`reason`; assert the Status shape and an unchanged store."""
        before = self.snapshot()
        status, out, _ = self.cluster.request(method, path, body, **kwargs)
        assert status == code, out
        assert isinstance(out, dict), out
        assert out["kind"] == "Status" and out["apiVersion"] == "v1", out
        assert out["status"] == "Failure" and out["code"] == code and out["reason"] == reason, out
        assert out["message"], out
        assert message in out["message"], out
        assert self.snapshot() == before
        return out


@pytest.fixture()
def ns(cluster: Cluster) -> Iterator[Namespace]:
    yield Namespace(cluster)


def _field_causes(status: dict[str, Any]) -> set[str]:
    return {c.get("field", "") for c in status.get("details", {}).get("causes", [])}


# ---- bodies -------------------------------------------------------------------------------------------


def test_malformed_json(ns: Namespace) -> None:
    ns.rejected("POST", ns.cm, raw=b'{"apiVersion": "v1", "kind": ', code=400, reason="BadRequest")
    ns.rejected("PUT", f"{ns.cm}/keep", raw=b"{nope}", code=400, reason="BadRequest")


def test_malformed_yaml(ns: Namespace) -> None:
    ns.rejected("POST", ns.cm, raw=b"apiVersion: v1\nkind: [ConfigMap\n  metadata: {", content_type="application/yaml",
                code=400, reason="BadRequest")


def test_yaml_body_is_accepted_when_well_formed(ns: Namespace) -> None:
    status, out, _ = ns.cluster.request(
        "POST", ns.cm, raw=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n",
        content_type="application/yaml")
    assert status == 201 and out["data"] == {"a": "b"}


@pytest.mark.parametrize("raw", [b"[1, 2]", b"[]", b'"text"', b"42", b"null", b"", b"   "],
                         ids=["array", "empty-array", "string", "number", "null", "empty", "blank"])
def test_body_that_is_not_an_object(ns: Namespace, raw: bytes) -> None:
    ns.rejected("POST", ns.cm, raw=raw, code=400, reason="BadRequest")


def test_wrong_kind_or_api_version_for_the_url(ns: Namespace) -> None:
    ns.rejected("POST", ns.cm, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}},
                code=400, reason="BadRequest", message="Secret")
    ns.rejected("POST", ns.cm, {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                code=400, reason="BadRequest", message="apps/v1")
    ns.rejected("POST", ns.dv, {**_datavolume("x"), "apiVersion": "cdi.kubevirt.io/v1alpha9"},
                code=400, reason="BadRequest")


def test_namespace_in_body_must_match_the_url(ns: Namespace) -> None:
    body = _configmap("x")
    body["metadata"]["namespace"] = "default"
    ns.rejected("POST", ns.cm, body, code=400, reason="BadRequest",
                message="the namespace of the provided object does not match the namespace sent on the request")
    keep = ns.cluster.request("GET", f"{ns.cm}/keep")[1]
    keep["metadata"]["namespace"] = "default"
    ns.rejected("PUT", f"{ns.cm}/keep", keep, code=400, reason="BadRequest")


def test_name_in_body_must_match_the_url(ns: Namespace) -> None:
    keep = ns.cluster.request("GET", f"{ns.cm}/keep")[1]
    keep["metadata"]["name"] = "other"
    ns.rejected("PUT", f"{ns.cm}/keep", keep, code=400, reason="BadRequest")


@pytest.mark.parametrize("name", ["Upper", "a" * 254, "a_b", "-dash", "dot."], ids=["uppercase", "too-long",
                                                                                  "underscore", "dash", "dot"])
def test_invalid_names(ns: Namespace, name: str) -> None:
    out = ns.rejected("POST", ns.cm, _configmap(name), code=422, reason="Invalid", message="metadata.name")
    assert out["details"]["kind"] == "ConfigMap"
    assert "metadata.name" in _field_causes(out)
    assert out["details"]["causes"][0]["reason"] == "FieldValueInvalid"


def test_slash_in_a_name(ns: Namespace) -> None:
    # In a body it is an invalid name; kube refuses it before touching the store.
    ns.rejected("POST", ns.cm, _configmap("a/b"), code=422, reason="Invalid", message="metadata.name")


def test_missing_name(ns: Namespace) -> None:
    out = ns.rejected("POST", ns.cm, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
                      code=422, reason="Invalid")
    assert "metadata.name" in _field_causes(out)


def test_invalid_label(ns: Namespace) -> None:
    body = _configmap("x")
    body["metadata"]["labels"] = {"bad key!": "v"}
    out = ns.rejected("POST", ns.cm, body, code=422, reason="Invalid")
    assert "metadata.labels" in _field_causes(out)


def test_body_arriving_in_pieces_is_read_whole(cluster: Cluster, ns: Namespace) -> None:
    """A body is read to its end however it is split on the wire (kubectl's protobuf bodies once came cut)."""
    body = json.dumps(_configmap("pieces", data={"k": "v" * 5000})).encode()
    url = urlsplit(cluster.server)
    conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port, context=cluster.ssl_context(),
                                       timeout=30)
    arrived = threading.Event()

    def pieces() -> Iterator[bytes]:
        yield body[:100]
        # The pause is the test: the server must already be reading when the rest comes.
        arrived.wait(0.3)
        yield body[100:]

    try:
        conn.request("POST", ns.cm, body=pieces(), headers={
            "Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json",
            "Content-Length": str(len(body))})
        resp = conn.getresponse()
        out = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 201, out
    assert out["data"]["k"] == "v" * 5000


def test_oversized_body_is_413(ns: Namespace) -> None:
    big = _configmap("big")
    big["data"] = {"blob": "x" * (3 * 1024 * 1024 + 1)}
    ns.rejected("POST", ns.cm, big, code=413, reason="RequestEntityTooLarge")


def test_unsupported_content_type_is_415(ns: Namespace) -> None:
    for ctype in ("application/xml", "text/plain"):
        ns.rejected("POST", ns.cm, _configmap("x"), content_type=ctype, code=415, reason="UnsupportedMediaType",
                    message="application/json")


def test_protobuf_garbage(ns: Namespace) -> None:
    ctype = "application/vnd.kubernetes.protobuf"
    ns.rejected("POST", ns.cm, raw=b"k8s\x00\xff\xff\xff\xff garbage", content_type=ctype,
                code=400, reason="BadRequest")
    ns.rejected("POST", ns.cm, raw=b"not even the magic", content_type=ctype, code=400, reason="BadRequest")


@pytest.mark.parametrize("query", ["dryRun=Some", "dryRun=true", "fieldValidation=Loud", "fieldValidation=strict"])
def test_bad_query_values(ns: Namespace, query: str) -> None:
    ns.rejected("POST", f"{ns.cm}?{query}", _configmap("x"), code=400, reason="BadRequest")


def test_duplicate_field_with_strict_validation(ns: Namespace) -> None:
    raw = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1"},"data":{"b":"2"}}'
    ns.rejected("POST", f"{ns.cm}?fieldValidation=Strict", raw=raw, code=400, reason="BadRequest",
                message='duplicate field "data"')


# ---- CRs and schemas -------------------------------------------------------------------------------------


def test_unknown_cr_fields_with_strict_validation(ns: Namespace) -> None:
    body = _datavolume("typo")
    body["spec"]["storag"] = {}
    out = ns.rejected("POST", f"{ns.dv}?fieldValidation=Strict", body, code=400, reason="BadRequest",
                      message='unknown field "spec.storag"')
    assert "strict decoding error" in out["message"]
    body = _datavolume("typo-meta")
    body["metadata"]["bogus"] = 1
    ns.rejected("POST", f"{ns.dv}?fieldValidation=Strict", body, code=400, reason="BadRequest",
                message='unknown field "metadata.bogus"')


def test_unknown_cr_fields_are_pruned_with_a_warning_by_default(ns: Namespace) -> None:
    body = _datavolume("pruned")
    body["spec"]["storag"] = {"x": 1}
    status, out, headers = ns.cluster.request("POST", ns.dv, body)
    assert status == 201, out
    assert "storag" not in out["spec"]
    # The warning text is a quoted-string in the header, so its own quotes are escaped.
    assert 'unknown field \\"spec.storag\\"' in headers.get("Warning", "")
    stored = ns.cluster.request("GET", f"{ns.dv}/pruned")[1]
    assert "storag" not in stored["spec"]


def test_cr_schema_violation_is_422(ns: Namespace) -> None:
    out = ns.rejected("POST", ns.dv, _datavolume("wrong-type", {"source": "http://example.com/disk.img"}),
                      code=422, reason="Invalid")
    assert any(f.startswith("spec.source") for f in _field_causes(out)), out


def test_kubectl_apply_with_a_typo(cluster: Cluster, ns: Namespace, tmp_path: Path) -> None:
    manifest = tmp_path / "dv.yaml"
    manifest.write_text(f"""apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: typo
  namespace: {ns.name}
spec:
  source:
    blank: {{}}
  storage:
    resoures:
      requests:
        storage: 1Mi
""")
    before = ns.snapshot()
    result = cluster.kubectl("apply", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert "Error from server (BadRequest)" in result.stderr, result.stderr
    assert 'unknown field "spec.storage.resoures"' in result.stderr
    assert ns.snapshot() == before


def test_kubectl_apply_with_a_typo_in_a_builtin(cluster: Cluster, ns: Namespace, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: {ns.name}\n"
                        "dta:\n  a: b\n")
    before = ns.snapshot()
    result = cluster.kubectl("apply", "-f", str(manifest), check=False)
    assert ns.snapshot() == before
    assert "Error from server (BadRequest)" in result.stderr, result.stderr
    assert 'unknown field "dta"' in result.stderr


# ---- lists and selectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "labelSelector=a%20in%20(", "labelSelector=a!!b", "labelSelector=%3Dv", "labelSelector=k%3Dbad%20value",
    "fieldSelector=spec.foo%3Dbar", "fieldSelector=metadata.name", "fieldSelector=metadata.name~x",
    "continue=garbage", "continue=eyJ2IjoxfQ",
], ids=["label-open-paren", "label-bangs", "label-no-key", "label-bad-value", "field-unsupported",
        "field-no-operator", "field-bad-operator", "continue-garbage", "continue-not-ours"])
def test_bad_list_queries(ns: Namespace, query: str) -> None:
    ns.rejected("GET", f"{ns.cm}?{query}", code=400, reason="BadRequest")


@pytest.mark.parametrize("query", ["resourceVersion=abc", "resourceVersion=-1", "watch=true&resourceVersion=abc"])
def test_bad_resource_version(ns: Namespace, query: str) -> None:
    ns.rejected("GET", f"{ns.cm}?{query}", code=400, reason="BadRequest", message="resource")


@pytest.mark.parametrize("query, message", [
    ("resourceVersionMatch=NotOlderThan", "resourceVersionMatch is forbidden unless resourceVersion is provided"),
    ("resourceVersion=5&resourceVersionMatch=Bogus", 'Unsupported value: "Bogus"'),
    ("resourceVersion=0&resourceVersionMatch=Exact", 'resourceVersionMatch "exact" is forbidden'),
], ids=["match-without-rv", "match-unknown", "exact-zero"])
def test_bad_resource_version_match_is_422(ns: Namespace, query: str, message: str) -> None:
    out = ns.rejected("GET", f"{ns.cm}?{query}", code=422, reason="Invalid", message=message)
    assert out["message"].startswith('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: ')
    assert _field_causes(out) == {"resourceVersionMatch"}


def test_good_resource_version_queries_work(ns: Namespace) -> None:
    for query in ("resourceVersion=0", "resourceVersion=1&resourceVersionMatch=NotOlderThan", "resourceVersion="):
        status, out, _ = ns.cluster.request("GET", f"{ns.cm}?{query}")
        assert status == 200 and out["kind"] == "ConfigMapList", (query, out)


def test_bad_watch_selector(ns: Namespace) -> None:
    ns.rejected("GET", f"{ns.cm}?watch=true&labelSelector=a%20in%20(", code=400, reason="BadRequest")


# ---- patches ---------------------------------------------------------------------------------------------


def test_malformed_json_patch(ns: Namespace) -> None:
    path = f"{ns.cm}/keep"
    ns.rejected("PATCH", path, raw=b"[{not json", content_type=JSON_PATCH, code=400, reason="BadRequest")
    ns.rejected("PATCH", path, {"op": "add", "path": "/data/x", "value": "1"}, content_type=JSON_PATCH,
                code=400, reason="BadRequest")


def test_failing_json_patch_test_is_422(ns: Namespace) -> None:
    path = f"{ns.cm}/keep"
    ns.rejected("PATCH", path, [{"op": "test", "path": "/data/k", "value": "not-v"},
                                {"op": "replace", "path": "/data/k", "value": "changed"}],
                content_type=JSON_PATCH, code=422, reason="Invalid")
    ns.rejected("PATCH", path, [{"op": "replace", "path": "/data/missing/deeper", "value": "x"}],
                content_type=JSON_PATCH, code=422, reason="Invalid")
    ns.rejected("PATCH", path, [{"op": "remove", "path": "/nothing"}], content_type=JSON_PATCH,
                code=422, reason="Invalid")


def test_json_patch_stale_resource_version_test_is_422(ns: Namespace) -> None:
    """kopf's optimistic lock: a JSON patch testing an old resourceVersion fails."""
    ns.rejected("PATCH", f"{ns.cm}/keep", [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
                                           {"op": "add", "path": "/data/x", "value": "y"}],
                content_type=JSON_PATCH, code=422, reason="Invalid")


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"{broken"], ids=["array", "string", "malformed"])
def test_merge_patch_that_is_not_an_object(ns: Namespace, raw: bytes) -> None:
    ns.rejected("PATCH", f"{ns.cm}/keep", raw=raw, content_type=MERGE, code=400, reason="BadRequest")


def test_patch_that_breaks_validation_is_422(ns: Namespace) -> None:
    out = ns.rejected("PATCH", f"{ns.cm}/keep", {"metadata": {"labels": {"bad key!": "v"}}}, content_type=MERGE,
                      code=422, reason="Invalid")
    assert "metadata.labels" in _field_causes(out)


def test_strategic_merge_patch_on_a_cr_is_415(ns: Namespace) -> None:
    ns.post(ns.dv, _datavolume("smp"))
    ns.rejected("PATCH", f"{ns.dv}/smp", {"metadata": {"labels": {"a": "b"}}},
                content_type="application/strategic-merge-patch+json", code=415, reason="UnsupportedMediaType",
                message="application/merge-patch+json")


def test_stale_update_is_409_conflict(ns: Namespace) -> None:
    keep = ns.cluster.request("GET", f"{ns.cm}/keep")[1]
    keep["metadata"]["resourceVersion"] = "1"
    keep["data"] = {"k": "changed"}
    ns.rejected("PUT", f"{ns.cm}/keep", keep, code=409, reason="Conflict",
                message="the object has been modified; please apply your changes to the latest version")


# ---- validation of built-in kinds ----------------------------------------------------------------------


def test_invalid_pvc_is_422_with_field_causes(ns: Namespace) -> None:
    out = ns.rejected("POST", ns.pvc, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                       "metadata": {"name": "p"}, "spec": {}}, code=422, reason="Invalid",
                      message='PersistentVolumeClaim "p" is invalid')
    fields = _field_causes(out)
    assert "spec.accessModes" in fields and "spec.resources[storage]" in fields, out
    # Several causes make one bracketed aggregate, as kube-apiserver prints them.
    assert out["message"] == ('PersistentVolumeClaim "p" is invalid: [spec.accessModes: Required value: at least 1 '
                              'access mode is required, spec.resources[storage]: Required value]')
    reasons = {c["reason"] for c in out["details"]["causes"]}
    assert reasons == {"FieldValueRequired"}
    assert out["details"]["name"] == "p" and out["details"]["kind"] == "PersistentVolumeClaim"

    out = ns.rejected("POST", ns.pvc, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "q"},
                                       "spec": {"accessModes": ["ReadWriteSometimes"],
                                                "resources": {"requests": {"storage": "lots"}}}},
                      code=422, reason="Invalid")
    fields = _field_causes(out)
    assert any(f.startswith("spec.accessModes") for f in fields), out
    assert any(f.startswith("spec.resources") for f in fields), out


def test_role_binding_role_ref_is_immutable(ns: Namespace) -> None:
    out = ns.rejected("PATCH", f"{ns.rb}/rb", {"roleRef": {"name": "edit"}}, content_type=MERGE,
                      code=422, reason="Invalid", message="cannot change roleRef")
    assert "roleRef" in _field_causes(out)
    assert out["details"]["group"] == "rbac.authorization.k8s.io" and out["details"]["kind"] == "RoleBinding"
    rb = ns.cluster.request("GET", f"{ns.rb}/rb")[1]
    rb["roleRef"]["kind"] = "Role"
    ns.rejected("PUT", f"{ns.rb}/rb", rb, code=422, reason="Invalid", message="cannot change roleRef")


def test_create_in_a_missing_namespace_is_404(ns: Namespace) -> None:
    ns.rejected("POST", "/api/v1/namespaces/no-such-ns-here/configmaps", _configmap("x"), code=404,
                reason="NotFound", message='namespaces "no-such-ns-here" not found')


def test_existing_name_is_409(ns: Namespace) -> None:
    ns.rejected("POST", ns.cm, _configmap("keep"), code=409, reason="AlreadyExists",
                message='configmaps "keep" already exists')


def test_wrong_json_types_in_a_builtin_are_400(ns: Namespace) -> None:
    """kube's typed decoding refuses a list where a map goes, or a string where an integer goes."""
    out = ns.rejected("POST", ns.cm, _configmap("typed", data=["a"]) | {"data": ["a"]}, code=400,
                      reason="BadRequest", message='ConfigMap in version "v1" cannot be handled as a ConfigMap')
    assert "data" in out["message"]
    ns.rejected("POST", ns.pvc, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "typed"},
        "spec": {"accessModes": "ReadWriteOnce", "resources": {"requests": {"storage": "1Gi"}}}},
        code=400, reason="BadRequest", message="spec.accessModes")
    # Quantities are int-or-string, and null decodes to the zero value: both are fine.
    ok = ns.post(ns.pvc, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "fine"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": 1073741824}},
                 "selector": None}})
    assert ok["spec"]["resources"]["requests"]["storage"] in (1073741824, "1Gi", "1073741824")
