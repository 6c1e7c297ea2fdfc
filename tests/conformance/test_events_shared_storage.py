"""events.k8s.io/v1 and core/v1 Events are one storage, as in kube-apiserver: each API reads the other's writes."""

from __future__ import annotations

import itertools

from tests.support.cluster import Cluster

_n = itertools.count()
EVENTS_V1 = "/apis/events.k8s.io/v1"


def _namespace(cluster: Cluster) -> str:
    name = f"ev-{next(_n)}"
    status, body, _ = cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body
    return name


def test_event_written_as_events_v1_reads_as_core(cluster: Cluster) -> None:
    ns = _namespace(cluster)
    status, created, _ = cluster.request("POST", f"{EVENTS_V1}/namespaces/{ns}/events", {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2026-11-23T01:00:00.000000Z", "reportingController": "pycdi.io/test",
        "reportingInstance": "test-1", "action": "Testing", "reason": "Tested", "type": "Normal",
        "note": "written through events.k8s.io",
        "regarding": {"kind": "ConfigMap", "namespace": ns, "name": "cm", "apiVersion": "v1"}})
    assert status == 201, created
    assert created["apiVersion"] == "events.k8s.io/v1" and created["note"] == "written through events.k8s.io"
    status, core, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/events/e1")
    assert status == 200, core
    assert core["apiVersion"] == "v1"
    assert core["message"] == "written through events.k8s.io"
    assert core["involvedObject"]["name"] == "cm" and core["reportingComponent"] == "pycdi.io/test"
    assert "note" not in core and "regarding" not in core
    # kubectl describe finds it by the core field selector on involvedObject.
    status, listed, _ = cluster.request(
        "GET", f"/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3Dcm")
    assert [e["metadata"]["name"] for e in listed["items"]] == ["e1"]


def test_event_written_as_core_reads_as_events_v1(cluster: Cluster) -> None:
    ns = _namespace(cluster)
    status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/events", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e2"}, "reason": "Created",
        "message": "written through core", "type": "Warning", "count": 3,
        "source": {"component": "pycdi"}, "involvedObject": {"kind": "Pod", "namespace": ns, "name": "p"}})
    assert status == 201, body
    status, listed, _ = cluster.request("GET", f"{EVENTS_V1}/namespaces/{ns}/events")
    assert status == 200, listed
    (event,) = listed["items"]
    assert event["apiVersion"] == "events.k8s.io/v1" and event["kind"] == "Event"
    assert event["note"] == "written through core" and event["regarding"]["name"] == "p"
    assert event["deprecatedCount"] == 3 and event["deprecatedSource"] == {"component": "pycdi"}
    # Deleting through one API removes it from both.
    status, _, _ = cluster.request("DELETE", f"{EVENTS_V1}/namespaces/{ns}/events/e2")
    assert status == 200
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/events/e2")[0] == 404
