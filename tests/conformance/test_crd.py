"""CustomResourceDefinitions: registration, discovery, OpenAPI, pruning/defaulting/validation, deletion."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from tests.conformance.test_watch import new_namespace, watch
from tests.support.cluster import Cluster

Obj = dict[str, Any]
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def widget_crd(group: str = "example.com", plural: str = "widgets", kind: str = "Widget",
               status_subresource: bool = True) -> Obj:
    """A CRD exercising schema features: required, enum, default, integer bounds, status, columns."""
    version: Obj = {
        "name": "v1", "served": True, "storage": True,
        "additionalPrinterColumns": [
            {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object", "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                },
                "status": {"type": "object", "properties": {
                    "phase": {"type": "string"}, "observedGeneration": {"type": "integer"}}},
            },
        }},
    }
    if status_subresource:
        version["subresources"] = {"status": {}}
    singular = kind.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": singular, "kind": kind, "listKind": f"{kind}List",
                           "shortNames": [f"{singular[:2]}x"], "categories": ["all"]},
                 "versions": [version]},
    }


def install_crd(cluster: Cluster, crd: Obj) -> Obj:
    status, body, _ = cluster.request("POST", CRDS, crd)
    assert status == 201, body
    cluster.kubectl("wait", "--for", "condition=established", "--timeout=60s", f"crd/{crd['metadata']['name']}")
    status, body, _ = cluster.request("GET", f"{CRDS}/{crd['metadata']['name']}")
    assert status == 200
    result: Obj = body
    return result


def widget(name: str, spec: Obj | None = None, group: str = "example.com", kind: str = "Widget") -> Obj:
    return {"apiVersion": f"{group}/v1", "kind": kind, "metadata": {"name": name},
            "spec": spec if spec is not None else {"size": 1}}


def unique_group() -> str:
    return f"g{uuid.uuid4().hex[:6]}.example.com"


# ---- registration --------------------------------------------------------------------------------------


def test_crd_becomes_established_with_accepted_names(cluster: Cluster) -> None:
    group = unique_group()
    crd = install_crd(cluster, widget_crd(group))
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["Established"]["status"] == "True"
    assert conditions["NamesAccepted"]["status"] == "True"
    names = crd["status"]["acceptedNames"]
    assert names["plural"] == "widgets" and names["kind"] == "Widget" and names["shortNames"] == ["wix"]
    assert crd["status"]["storedVersions"] == ["v1"]


def test_crd_appears_in_legacy_and_aggregated_discovery_and_openapi(cluster: Cluster) -> None:
    group = unique_group()
    install_crd(cluster, widget_crd(group))
    status, groups, _ = cluster.request("GET", "/apis")
    assert status == 200
    entry = next(g for g in groups["groups"] if g["name"] == group)
    assert entry["preferredVersion"] == {"groupVersion": f"{group}/v1", "version": "v1"}

    status, resources, _ = cluster.request("GET", f"/apis/{group}/v1")
    assert status == 200 and resources["kind"] == "APIResourceList" and resources["groupVersion"] == f"{group}/v1"
    by_name = {r["name"]: r for r in resources["resources"]}
    main = by_name["widgets"]
    assert main["kind"] == "Widget" and main["namespaced"] is True and main["singularName"] == "widget"
    assert main["shortNames"] == ["wix"] and main["categories"] == ["all"]
    assert set(main["verbs"]) == {"create", "delete", "deletecollection", "get", "list", "patch", "update",
                                  "watch"}
    assert set(by_name["widgets/status"]["verbs"]) == {"get", "patch", "update"}

    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    status, agg, headers = cluster.request("GET", "/apis", headers={"Accept": accept})
    assert status == 200 and agg["kind"] == "APIGroupDiscoveryList"
    item = next(i for i in agg["items"] if i["metadata"]["name"] == group)
    res = item["versions"][0]["resources"][0]
    assert res["resource"] == "widgets" and res["scope"] == "Namespaced"
    assert res["responseKind"] == {"group": group, "version": "v1", "kind": "Widget"}
    assert [s["subresource"] for s in res.get("subresources", [])] == ["status"]

    status, index, _ = cluster.request("GET", "/openapi/v3")
    assert status == 200 and f"apis/{group}/v1" in index["paths"]
    status, doc, _ = cluster.request("GET", "/" + index["paths"][f"apis/{group}/v1"]["serverRelativeURL"]
                                     .lstrip("/"))
    assert status == 200
    assert any(f"/apis/{group}/v1/namespaces/{{namespace}}/widgets/{{name}}" == p for p in doc["paths"])


def test_kubectl_uses_short_names_and_printer_columns(cluster: Cluster) -> None:
    group = unique_group()
    install_crd(cluster, widget_crd(group))
    ns = new_namespace(cluster, "crd")
    status, body, _ = cluster.request("POST", f"/apis/{group}/v1/namespaces/{ns}/widgets",
                                      widget("w1", {"size": 7, "color": "blue"}, group))
    assert status == 201, body
    out = cluster.kubectl("get", f"widgets.{group}", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "COLOR", "SIZE", "AGE"]
    assert out[1].split()[:3] == ["w1", "blue", "7"]


# ---- pruning, defaulting, validation ------------------------------------------------------------------------


def test_cr_is_pruned_and_defaulted(cluster: Cluster) -> None:
    group = unique_group()
    install_crd(cluster, widget_crd(group))
    ns = new_namespace(cluster, "crd")
    body = widget("p", {"size": 2, "unknown": {"deep": 1}, "extra": {"kept": {"x": 1}}}, group)
    body["topLevelJunk"] = True
    status, created, _ = cluster.request("POST", f"/apis/{group}/v1/namespaces/{ns}/widgets", body)
    assert status == 201, created
    assert created["spec"] == {"size": 2, "color": "red", "extra": {"kept": {"x": 1}}}
    assert "topLevelJunk" not in created
    _, stored, _ = cluster.request("GET", f"/apis/{group}/v1/namespaces/{ns}/widgets/p")
    assert stored["spec"] == created["spec"]


def test_cr_validation_gives_422_with_causes(cluster: Cluster) -> None:
    group = unique_group()
    install_crd(cluster, widget_crd(group))
    ns = new_namespace(cluster, "crd")
    path = f"/apis/{group}/v1/namespaces/{ns}/widgets"
    cases: list[tuple[Obj, str, str, str]] = [
        ({"size": 1, "color": "green"}, "FieldValueNotSupported", "spec.color",
         'Unsupported value: "green": supported values: "red", "blue"'),
        ({"size": "big"}, "FieldValueTypeInvalid", "spec.size",
         'Invalid value: "string": spec.size in body must be of type integer: "string"'),
        ({"color": "red"}, "FieldValueRequired", "spec.size", "Required value"),
        ({"size": 0}, "FieldValueInvalid", "spec.size",
         "Invalid value: 0: spec.size in body should be greater than or equal to 1"),
    ]
    for spec, reason, field, message in cases:
        status, body, _ = cluster.request("POST", path, widget("bad", spec, group))
        assert status == 422, (spec, body)
        assert body["kind"] == "Status" and body["reason"] == "Invalid" and body["code"] == 422
        assert body["details"]["name"] == "bad" and body["details"]["group"] == group
        assert body["details"]["kind"] == "Widget"
        assert body["details"]["causes"] == [{"reason": reason, "message": message, "field": field}]
        assert body["message"] == f'Widget.{group} "bad" is invalid: {field}: {message}'
    # Several errors are reported together, bracketed as kube's aggregate does.
    status, body, _ = cluster.request("POST", path, widget("bad", {"size": "x", "color": "green"}, group))
    assert status == 422 and len(body["details"]["causes"]) == 2
    assert body["message"].startswith(f'Widget.{group} "bad" is invalid: [') and body["message"].endswith("]")
    status, _, _ = cluster.request("GET", f"{path}/bad")
    assert status == 404


def test_non_structural_schema_is_rejected(cluster: Cluster) -> None:
    crd = widget_crd(unique_group())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    del schema["properties"]["spec"]["properties"]["size"]["type"]  # every field needs a type
    status, body, _ = cluster.request("POST", CRDS, crd)
    assert status == 422, body
    assert body["reason"] == "Invalid" and body["details"]["kind"] == "CustomResourceDefinition"
    assert body["details"]["group"] == "apiextensions.k8s.io"
    fields = [c["field"] for c in body["details"]["causes"]]
    assert "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type" in fields
    status, _, _ = cluster.request("GET", f"{CRDS}/{crd['metadata']['name']}")
    assert status == 404


def test_invalid_crd_names_are_rejected(cluster: Cluster) -> None:
    crd = widget_crd(unique_group())
    crd["metadata"]["name"] = "wrong.example.com"
    status, body, _ = cluster.request("POST", CRDS, crd)
    assert status == 422, body
    assert any(c["field"] == "metadata.name" for c in body["details"]["causes"])


# ---- deletion -------------------------------------------------------------------------------------------------


def test_deleting_crd_deletes_crs_and_discovery(cluster: Cluster) -> None:
    group = unique_group()
    crd = install_crd(cluster, widget_crd(group))
    ns = new_namespace(cluster, "crd")
    path = f"/apis/{group}/v1/namespaces/{ns}/widgets"
    for name in ("a", "b"):
        status, _, _ = cluster.request("POST", path, widget(name, None, group))
        assert status == 201
    with watch(cluster, CRDS, fieldSelector=f"metadata.name={crd['metadata']['name']}",
               resourceVersion=crd["metadata"]["resourceVersion"], timeoutSeconds="60") as w:
        status, body, _ = cluster.request("DELETE", f"{CRDS}/{crd['metadata']['name']}")
        assert status == 200, body
        w.until(lambda e: e["type"] == "DELETED")
    status, _, _ = cluster.request("GET", path)
    assert status == 404
    status, groups, _ = cluster.request("GET", "/apis")
    assert group not in [g["name"] for g in groups["groups"]]
    status, _, _ = cluster.request("GET", f"/apis/{group}/v1")
    assert status == 404
    # Re-creating the CRD starts empty: the old CRs are really gone.
    install_crd(cluster, copy.deepcopy(widget_crd(group)))
    status, listing, _ = cluster.request("GET", path)
    assert status == 200 and listing["items"] == []
