"""Deletion: finalizers, preconditions, garbage collection policies, namespace deletion, deletecollection."""

from __future__ import annotations

from typing import Any

from tests.conformance.test_watch import new_namespace, watch
from tests.support.cluster import Cluster

Obj = dict[str, Any]
MERGE = "application/merge-patch+json"


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def secret_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/secrets" + (f"/{name}" if name else "")


def create(cluster: Cluster, path: str, meta: Obj) -> Obj:
    status, body, _ = cluster.request("POST", path, {"metadata": meta})
    assert status == 201, body
    result: Obj = body
    return result


def owner_ref(owner: Obj, block: bool = False) -> Obj:
    ref: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"]}
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def current_rv(cluster: Cluster, path: str) -> str:
    status, body, _ = cluster.request("GET", path)
    assert status == 200
    return str(body["metadata"]["resourceVersion"])


# ---- finalizers ---------------------------------------------------------------------------------------------


def test_finalizers_hold_the_object_until_removed(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "del")
    obj = create(cluster, cm_path(ns), {"name": "f", "finalizers": ["example.com/a", "example.com/b"]})
    with watch(cluster, cm_path(ns), fieldSelector="metadata.name=f",
               resourceVersion=obj["metadata"]["resourceVersion"], timeoutSeconds="30") as w:
        status, body, _ = cluster.request("DELETE", cm_path(ns, "f"))
        assert status == 200, body
        assert body["kind"] == "ConfigMap"  # the object itself, not a Status
        meta = body["metadata"]
        assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0
        assert meta["finalizers"] == ["example.com/a", "example.com/b"]
        event = w.next()
        assert event is not None and event["type"] == "MODIFIED"
        assert event["object"]["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]

        # A second DELETE is a no-op that returns the object.
        status, again, _ = cluster.request("DELETE", cm_path(ns, "f"))
        assert status == 200 and again["metadata"]["resourceVersion"] == meta["resourceVersion"]

        # No new finalizers once deletion started.
        status, err, _ = cluster.request("PATCH", cm_path(ns, "f"), {"metadata": {"finalizers": [
            "example.com/a", "example.com/b", "example.com/c"]}}, content_type=MERGE)
        assert status == 422, err
        assert err["reason"] == "Invalid"
        assert err["details"]["causes"] == [{
            "reason": "FieldValueForbidden", "field": "metadata.finalizers",
            "message": "Forbidden: no new finalizers can be added if the object is being deleted, "
                       'found new finalizers []string{"example.com/c"}'}]

        status, body, _ = cluster.request("PATCH", cm_path(ns, "f"), {"metadata": {"finalizers": ["example.com/b"]}},
                                          content_type=MERGE)
        assert status == 200 and body["metadata"]["finalizers"] == ["example.com/b"]
        event = w.next()
        assert event is not None and event["type"] == "MODIFIED"

        status, body, _ = cluster.request("PATCH", cm_path(ns, "f"), {"metadata": {"finalizers": None}},
                                          content_type=MERGE)
        assert status == 200, body
        # kube may send a MODIFIED (finalizers emptied) before the DELETED; the DELETED is what counts.
        events = w.until(lambda e: e["type"] == "DELETED")
        assert {e["type"] for e in events} <= {"MODIFIED", "DELETED"}
        final = events[-1]["object"]["metadata"]
        assert not final.get("finalizers") and final["uid"] == obj["metadata"]["uid"]
        assert int(final["resourceVersion"]) >= int(body["metadata"]["resourceVersion"])
    assert cluster.request("GET", cm_path(ns, "f"))[0] == 404


def test_delete_without_finalizers_returns_the_object_and_is_gone(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "del")
    create(cluster, cm_path(ns), {"name": "plain"})
    status, body, _ = cluster.request("DELETE", cm_path(ns, "plain"))
    assert status == 200
    assert body["kind"] == "ConfigMap" and body["metadata"]["name"] == "plain"
    status, body, _ = cluster.request("DELETE", cm_path(ns, "plain"))
    assert status == 404 and body["reason"] == "NotFound"


def test_delete_preconditions(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "del")
    obj = create(cluster, cm_path(ns), {"name": "pc"})
    uid, rv = obj["metadata"]["uid"], obj["metadata"]["resourceVersion"]
    status, body, _ = cluster.request("DELETE", cm_path(ns, "pc"), {"preconditions": {"uid": "not-the-uid"}})
    assert status == 409
    assert body["reason"] == "Conflict" and body["details"] == {"name": "pc", "kind": "configmaps"}
    assert body["message"].startswith('Operation cannot be fulfilled on configmaps "pc": ')
    assert f"Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}" in body["message"]
    status, body, _ = cluster.request("DELETE", cm_path(ns, "pc"), {"preconditions": {"resourceVersion": "1"}})
    assert status == 409 and body["reason"] == "Conflict"
    assert f"Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: {rv}" \
        in body["message"]
    assert cluster.request("GET", cm_path(ns, "pc"))[0] == 200
    status, _, _ = cluster.request("DELETE", cm_path(ns, "pc"),
                                   {"preconditions": {"uid": uid, "resourceVersion": rv}})
    assert status == 200
    assert cluster.request("GET", cm_path(ns, "pc"))[0] == 404


# ---- garbage collection -------------------------------------------------------------------------------------


def test_background_deletion_collects_dependents(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "gc")
    owner = create(cluster, cm_path(ns), {"name": "owner"})
    other = create(cluster, cm_path(ns), {"name": "other-owner"})
    create(cluster, secret_path(ns), {"name": "dep1", "ownerReferences": [owner_ref(owner)]})
    create(cluster, secret_path(ns), {"name": "dep2", "ownerReferences": [owner_ref(owner, block=True)]})
    # A dependent with a second, living owner survives and loses only the dangling reference.
    create(cluster, secret_path(ns), {"name": "shared", "ownerReferences": [owner_ref(owner), owner_ref(other)]})
    create(cluster, secret_path(ns), {"name": "unrelated"})
    rv = current_rv(cluster, secret_path(ns))
    with watch(cluster, secret_path(ns), resourceVersion=rv, timeoutSeconds="60") as w:
        status, body, _ = cluster.request("DELETE", cm_path(ns, "owner"), {"propagationPolicy": "Background"})
        assert status == 200, body
        assert cluster.request("GET", cm_path(ns, "owner"))[0] == 404  # the owner goes at once
        deleted: set[str] = set()
        shared_refs: list[Obj] | None = None
        for event in w:
            name = event["object"]["metadata"]["name"]
            if event["type"] == "DELETED":
                deleted.add(name)
            if name == "shared" and event["type"] == "MODIFIED":
                shared_refs = event["object"]["metadata"].get("ownerReferences")
            if deleted >= {"dep1", "dep2"} and shared_refs is not None:
                break
    assert deleted == {"dep1", "dep2"}
    assert shared_refs == [owner_ref(other)]
    assert cluster.request("GET", secret_path(ns, "unrelated"))[0] == 200
    assert cluster.request("GET", secret_path(ns, "shared"))[0] == 200


def test_foreground_deletion_waits_for_blocking_dependents(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "gc")
    owner = create(cluster, cm_path(ns), {"name": "owner"})
    # The dependent's own finalizer keeps it (and so the owner) around until we let go.
    create(cluster, secret_path(ns), {"name": "blocker", "finalizers": ["example.com/hold"],
                                      "ownerReferences": [owner_ref(owner, block=True)]})
    with watch(cluster, cm_path(ns), fieldSelector="metadata.name=owner",
               resourceVersion=owner["metadata"]["resourceVersion"], timeoutSeconds="60") as w:
        status, body, _ = cluster.request("DELETE", cm_path(ns, "owner"), {"propagationPolicy": "Foreground"})
        assert status == 200, body
        assert body["metadata"]["deletionTimestamp"]
        assert "foregroundDeletion" in body["metadata"]["finalizers"]
        # The GC asks the dependent to go; it is held by its finalizer, so the owner stays.
        with watch(cluster, secret_path(ns), fieldSelector="metadata.name=blocker", resourceVersion="0",
                   timeoutSeconds="60") as dw:
            dw.until(lambda e: bool(e["object"]["metadata"].get("deletionTimestamp")))
        status, owner_now, _ = cluster.request("GET", cm_path(ns, "owner"))
        assert status == 200 and "foregroundDeletion" in owner_now["metadata"]["finalizers"]
        status, _, _ = cluster.request("PATCH", secret_path(ns, "blocker"), {"metadata": {"finalizers": None}},
                                       content_type=MERGE)
        assert status == 200
        events = w.until(lambda e: e["type"] == "DELETED")
    assert events[-1]["object"]["metadata"]["uid"] == owner["metadata"]["uid"]
    assert cluster.request("GET", secret_path(ns, "blocker"))[0] == 404


def test_orphan_deletion_keeps_dependents_and_strips_references(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "gc")
    owner = create(cluster, cm_path(ns), {"name": "owner"})
    create(cluster, secret_path(ns), {"name": "orphan", "ownerReferences": [owner_ref(owner)]})
    with watch(cluster, cm_path(ns), fieldSelector="metadata.name=owner",
               resourceVersion=owner["metadata"]["resourceVersion"], timeoutSeconds="60") as w:
        status, body, _ = cluster.request("DELETE", cm_path(ns, "owner"), {"propagationPolicy": "Orphan"})
        assert status == 200, body
        assert body["metadata"]["finalizers"] == ["orphan"] and body["metadata"]["deletionTimestamp"]
        w.until(lambda e: e["type"] == "DELETED")
    status, dep, _ = cluster.request("GET", secret_path(ns, "orphan"))
    assert status == 200
    assert not dep["metadata"].get("ownerReferences")
    assert not dep["metadata"].get("deletionTimestamp")


def test_kubectl_delete_cascade_orphan(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "gc")
    owner = create(cluster, cm_path(ns), {"name": "owner"})
    create(cluster, secret_path(ns), {"name": "kept", "ownerReferences": [owner_ref(owner)]})
    cluster.kubectl("delete", "configmap", "owner", "-n", ns, "--cascade=orphan", "--wait=true")
    status, dep, _ = cluster.request("GET", secret_path(ns, "kept"))
    assert status == 200 and not dep["metadata"].get("ownerReferences")


def test_bad_propagation_policy_is_400(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "gc")
    create(cluster, cm_path(ns), {"name": "x"})
    status, body, _ = cluster.request("DELETE", cm_path(ns, "x"), {"propagationPolicy": "Sideways"})
    assert status in (400, 422), body
    assert body["kind"] == "Status"
    assert cluster.request("GET", cm_path(ns, "x"))[0] == 200


# ---- namespaces and collections -----------------------------------------------------------------------------


def test_namespace_deletion_removes_content_then_namespace(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "nsdel")
    create(cluster, cm_path(ns), {"name": "c1"})
    create(cluster, secret_path(ns), {"name": "s1"})
    _, ns_obj, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}")
    with watch(cluster, "/api/v1/namespaces", fieldSelector=f"metadata.name={ns}",
               resourceVersion=ns_obj["metadata"]["resourceVersion"], timeoutSeconds="60") as w:
        status, body, _ = cluster.request("DELETE", f"/api/v1/namespaces/{ns}")
        assert status == 200, body
        assert body["status"]["phase"] == "Terminating" and body["metadata"]["deletionTimestamp"]
        assert body["spec"]["finalizers"] == ["kubernetes"]
        w.until(lambda e: e["type"] == "DELETED")
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}")
    assert status == 404
    assert body["message"] == f'namespaces "{ns}" not found'
    _, cms, _ = cluster.request("GET", f"/api/v1/configmaps?fieldSelector=metadata.namespace%3D{ns}")
    _, secrets, _ = cluster.request("GET", f"/api/v1/secrets?fieldSelector=metadata.namespace%3D{ns}")
    assert cms["items"] == [] and secrets["items"] == []


def test_kubectl_delete_namespace_waits(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "nsdel")
    create(cluster, cm_path(ns), {"name": "c1"})
    cluster.kubectl("delete", "namespace", ns, "--timeout=60s")
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}")[0] == 404


def test_deletecollection_with_label_selector(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "dc")
    for name, labels in (("a", {"drop": "yes"}), ("b", {"drop": "yes"}), ("c", {"drop": "no"}), ("d", {})):
        create(cluster, cm_path(ns), {"name": name, "labels": labels})
    status, body, _ = cluster.request("DELETE", cm_path(ns) + "?labelSelector=drop%3Dyes")
    assert status == 200, body
    assert body["kind"] == "ConfigMapList"
    assert sorted(i["metadata"]["name"] for i in body["items"]) == ["a", "b"]
    _, listing, _ = cluster.request("GET", cm_path(ns))
    left = sorted(i["metadata"]["name"] for i in listing["items"] if i["metadata"]["name"] != "kube-root-ca.crt")
    assert left == ["c", "d"]
