"""Durability and restarts: SIGKILL mid-burst loses no acknowledged write; a restart resumes every kind of state."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.cluster import Cluster

GROUP = "durability.pycdi.test"
WIDGETS = f"/apis/{GROUP}/v1"
THREADS = 8
OPS_PER_THREAD = 1500
KILL_AFTER = 1200  # acknowledged writes before the recorder pulls the plug


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """This module kills and restarts its cluster, so it does not share the per-module fixture's."""
    c = Cluster(Path(tmp_path_factory.mktemp("durable"))).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture()
def cluster(own_cluster: Cluster) -> Cluster:
    if own_cluster.process is None:  # an earlier test failed between kill and restart
        own_cluster.start()
    return own_cluster


def _ok(result: tuple[int, Any, dict[str, str]]) -> Any:
    status, body, _ = result
    assert 200 <= status < 300, (status, body)
    return body


def _namespace(cluster: Cluster, name: str) -> None:
    _ok(cluster.request("POST", "/api/v1/namespaces",
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))


def _ensure_widget_crd(cluster: Cluster) -> None:
    status, _, _ = cluster.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{GROUP}")
    if status == 200:
        return
    _ok(cluster.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                   "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}))
    cluster.kubectl("wait", "--for=condition=established", f"crd/widgets.{GROUP}", "--timeout=60s")


# ---- SIGKILL in the middle of a burst ---------------------------------------------------------------------


@dataclass
class Ack:
    """One write the server answered with 2xx."""

    op: str  # create | update | delete | widget
    name: str
    value: int
    rv: int


@dataclass
class Recorder:
    """Collects acknowledged writes; after `kill_after` of them it SIGKILLs the server while writers run."""

    cluster: Cluster
    kill_after: int
    acks: list[Ack] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    killed: threading.Event = field(default_factory=threading.Event)
    failures: list[str] = field(default_factory=list)
    finished_early: int = 0
    #: Deletes sent but never answered (the kill came first): they may or may not have committed.
    unanswered_deletes: set[str] = field(default_factory=set)

    def record(self, ack: Ack) -> None:
        with self.lock:
            self.acks.append(ack)
            due = len(self.acks) == self.kill_after
        if due:
            self.cluster.kill()
            self.killed.set()


class Writer(threading.Thread):
    """One client connection issuing creates, merge-patch updates, deletes and CR patches in a loop."""

    def __init__(self, index: int, cluster: Cluster, namespace: str, recorder: Recorder) -> None:
        super().__init__(name=f"writer-{index}", daemon=True)
        self.index = index
        self.namespace = namespace
        self.recorder = recorder
        url = urlsplit(cluster.server)
        self.conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port, context=cluster.ssl_context(),
                                                timeout=60)
        self.headers = {"Authorization": f"Bearer {cluster.token}", "Accept": "application/json"}

    def call(self, method: str, path: str, body: Any, ctype: str = "application/json") -> tuple[int, Any]:
        self.conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                          headers={**self.headers, "Content-Type": ctype})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None

    def run(self) -> None:
        base = f"/api/v1/namespaces/{self.namespace}/configmaps"
        widget = f"{WIDGETS}/namespaces/{self.namespace}/widgets/shared"
        mine: list[str] = []
        in_flight_delete = ""
        try:
            for i in range(OPS_PER_THREAD):
                step = i % 4
                if step == 0 or not mine:
                    name = f"cm-{self.index}-{i}"
                    status, out = self.call("POST", base, {"apiVersion": "v1", "kind": "ConfigMap",
                                                           "metadata": {"name": name}, "data": {"v": str(i)}})
                    op, value = "create", i
                    if 200 <= status < 300:
                        mine.append(name)
                elif step == 1:
                    name = mine[-1]
                    status, out = self.call("PATCH", f"{base}/{name}", {"data": {"v": str(i)}},
                                            "application/merge-patch+json")
                    op, value = "update", i
                elif step == 2:
                    # Each writer owns one key of the shared CR, so its values only grow.
                    name = f"w{self.index}"
                    status, out = self.call("PATCH", widget, {"spec": {name: i}}, "application/merge-patch+json")
                    op, value = "widget", i
                else:
                    if len(mine) < 3:
                        continue
                    name = mine.pop(0)
                    in_flight_delete = name
                    status, out = self.call("DELETE", f"{base}/{name}", None)
                    in_flight_delete = ""
                    op, value = "delete", i
                if not 200 <= status < 300:
                    self.recorder.failures.append(f"{op} {name}: {status} {out}")
                    return
                self.recorder.record(Ack(op, name, value, int(out["metadata"]["resourceVersion"])))
        except (OSError, http.client.HTTPException):
            # The server is gone: this request's outcome is unknown, and that is allowed.
            if in_flight_delete:
                with self.recorder.lock:
                    self.recorder.unanswered_deletes.add(in_flight_delete)
            return
        finally:
            self.conn.close()
        with self.recorder.lock:
            self.recorder.finished_early += 1


def test_sigkill_mid_burst_keeps_every_acknowledged_write(cluster: Cluster) -> None:
    _ensure_widget_crd(cluster)
    ns = "burst"
    _namespace(cluster, ns)
    _ok(cluster.request("POST", f"{WIDGETS}/namespaces/{ns}/widgets", {
        "apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "shared"}, "spec": {}}))

    recorder = Recorder(cluster, KILL_AFTER)
    writers = [Writer(i, cluster, ns, recorder) for i in range(THREADS)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=600)
    assert not any(w.is_alive() for w in writers)
    assert not recorder.failures, recorder.failures[:5]
    assert recorder.killed.is_set(), f"only {len(recorder.acks)} writes were acknowledged"
    # The kill landed while writers were still busy: none of them ran out of work.
    assert recorder.finished_early == 0
    acks = list(recorder.acks)
    assert len(acks) >= KILL_AFTER

    cluster.start()  # same data dir
    items = _ok(cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps"))
    stored = {i["metadata"]["name"]: i for i in items["items"]}
    deleted = {a.name for a in acks if a.op == "delete"}
    latest: dict[str, Ack] = {}
    for a in acks:
        if a.op in ("create", "update"):
            if a.name not in latest or a.value > latest[a.name].value:
                latest[a.name] = a
    maybe_deleted = recorder.unanswered_deletes
    missing = [n for n in latest if n not in deleted and n not in maybe_deleted and n not in stored]
    assert not missing, f"{len(missing)} acknowledged objects lost, e.g. {missing[:5]}"
    for name, ack in latest.items():
        if name in deleted or name not in stored:
            continue
        obj = stored[name]
        assert int(obj["data"]["v"]) >= ack.value, (name, obj["data"], ack)
        assert int(obj["metadata"]["resourceVersion"]) >= ack.rv
    resurrected = [n for n in deleted if n in stored]
    assert not resurrected, f"acknowledged deletes undone: {resurrected[:5]}"

    widget = _ok(cluster.request("GET", f"{WIDGETS}/namespaces/{ns}/widgets/shared"))
    for a in acks:
        if a.op == "widget":
            assert widget["spec"].get(a.name, -1) >= a.value, (a, widget["spec"])

    # The global resourceVersion continues above everything acknowledged before the kill.
    top = max(a.rv for a in acks)
    assert int(items["metadata"]["resourceVersion"]) >= top
    fresh = _ok(cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-restart"}}))
    assert int(fresh["metadata"]["resourceVersion"]) > top
    assert cluster.kubectl("get", "configmaps", "-n", ns, "-o", "name").stdout.count("\n") >= len(stored)


# ---- clean restart resumes everything ---------------------------------------------------------------------


def _watch_events(cluster: Cluster, path: str, rv: str, until: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Read watch events from `rv` until `until` events arrived (the server's timeout bounds a hang)."""
    url = urlsplit(cluster.server)
    conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port, context=cluster.ssl_context(),
                                       timeout=60)
    events: list[tuple[str, str, dict[str, Any]]] = []
    try:
        conn.request("GET", f"{path}?watch=true&resourceVersion={rv}&timeoutSeconds=60",
                     headers={"Authorization": f"Bearer {cluster.token}"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        while len(events) < until:
            line = resp.readline()
            if not line:
                break
            event = json.loads(line)
            if event["type"] == "BOOKMARK":
                continue
            events.append((event["type"], event["object"]["metadata"]["name"], event["object"]))
    finally:
        conn.close()
    return events


def test_restart_resumes_objects_rbac_users_and_watches(cluster: Cluster, tmp_path: Path) -> None:
    _ensure_widget_crd(cluster)
    ns = "resume"
    _namespace(cluster, ns)
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    _ok(cluster.request("POST", cms, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old"},
                                      "data": {"a": "1"}}))
    widget = _ok(cluster.request("POST", f"{WIDGETS}/namespaces/{ns}/widgets", {
        "apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}))
    dv = _ok(cluster.request("POST", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{ns}/datavolumes", {
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": "dv"},
        "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Mi"}}}}}))
    user_config = cluster.new_user("resumer", ns)
    user_token = yaml.safe_load(user_config.read_text())["users"][0]["user"]["token"]
    _ok(cluster.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]}))
    _ok(cluster.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "cm-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "resumer"}]}))
    listed = _ok(cluster.request("GET", cms))
    watch_from = listed["metadata"]["resourceVersion"]
    # One change after the watch point but before the restart: the resumed watch must replay it.
    _ok(cluster.request("POST", cms, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "before"}}))
    top = int(_ok(cluster.request("GET", cms))["metadata"]["resourceVersion"])
    old_server = cluster.server

    assert cluster.stop() == 0
    cluster.start()

    # Objects and CRs (with their identity) came back.
    assert _ok(cluster.request("GET", f"{cms}/old"))["data"] == {"a": "1"}
    again = _ok(cluster.request("GET", f"{WIDGETS}/namespaces/{ns}/widgets/w"))
    assert again["spec"] == {"size": 3} and again["metadata"]["uid"] == widget["metadata"]["uid"]
    assert _ok(cluster.request("GET", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{ns}/datavolumes/dv")
               )["metadata"]["uid"] == dv["metadata"]["uid"]
    assert f"widgets.{GROUP}" in cluster.kubectl("get", "crd", "-o", "name").stdout

    # The user's kubeconfig works once pointed at the new port (api-port 0 picked another), with the same rights.
    config = yaml.safe_load(user_config.read_text())
    assert config["clusters"][0]["cluster"]["server"] == old_server
    config["clusters"][0]["cluster"]["server"] = cluster.server
    moved = tmp_path / "user-kubeconfig"
    moved.write_text(yaml.safe_dump(config))
    assert cluster.kubectl("get", "configmap", "old", kubeconfig=moved).returncode == 0
    denied = cluster.kubectl("get", "secrets", kubeconfig=moved, check=False)
    assert "Forbidden" in denied.stderr, denied.stderr
    assert cluster.request("GET", f"{cms}/old", token=user_token)[0] == 200
    # `pycdi user create` again hands out the same identity.
    reissued = yaml.safe_load(cluster.pycdi("user", "create", "resumer", "--namespace", ns, "--data-dir",
                                            str(cluster.data_dir)).stdout)
    assert reissued["users"][0]["user"]["token"] == user_token

    # New writes continue the revision sequence, and a watch from before the restart replays everything since.
    after = _ok(cluster.request("POST", cms, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}}))
    assert int(after["metadata"]["resourceVersion"]) > top
    _ok(cluster.request("PATCH", f"{cms}/old", {"data": {"a": "2"}}, content_type="application/merge-patch+json"))
    _ok(cluster.request("DELETE", f"{cms}/before"))
    events = _watch_events(cluster, cms, watch_from, until=4)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "before"), ("ADDED", "new"), ("MODIFIED", "old"),
                                              ("DELETED", "before")]
    assert events[2][2]["data"] == {"a": "2"}
    revisions = [int(o["metadata"]["resourceVersion"]) for _, _, o in events]
    assert revisions == sorted(revisions) and revisions[0] > int(watch_from)
