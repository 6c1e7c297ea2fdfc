"""The real kubectl reading from `pycdi up`: server-side tables, output formats, watches, selectors, paging."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.cluster import KUBECTL, Cluster

WATCH_TIMEOUT = 60.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = unique("kr")
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(cluster: Cluster, docs: list[dict[str, Any]]) -> str:
    return cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs)).stdout


def header(output: str) -> list[str]:
    """Column names of a kubectl table: split on runs of two or more spaces."""
    import re

    return re.split(r"\s{2,}", output.splitlines()[0].strip())


def rows(output: str) -> list[list[str]]:
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()[1:] if line.strip()]


def pvc(name: str, ns: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual-none",
                     "resources": {"requests": {"storage": "1Gi"}}}}


def configmap(name: str, ns: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "data": {"k": name}}


def datavolume(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": name, "namespace": ns},
            # A sourceRef to no DataSource: no controller writes its status, so the test's own writes are all there is.
            "spec": {"sourceRef": {"kind": "DataSource", "name": "not-there"},
                     "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}


# ---- tables --------------------------------------------------------------------------------------


def test_get_pods_table(cluster: Cluster, ns: str) -> None:
    apply(cluster, [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}])
    out = cluster.kubectl("get", "pods", "-n", ns).stdout
    assert header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    (row,) = rows(out)
    assert row[0] == "web"
    assert row[1] == "0/1"
    assert row[3] == "0"


def test_get_pvc_table(cluster: Cluster, ns: str) -> None:
    apply(cluster, [pvc("claim", ns)])
    out = cluster.kubectl("get", "pvc", "-n", ns).stdout
    cols = header(out)
    assert cols[:6] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS"]
    assert cols[-1] == "AGE"
    line = out.splitlines()[1]
    assert line.startswith("claim ")
    assert "manual-none" in line


def test_get_pv_table(cluster: Cluster) -> None:
    name = unique("pv")
    apply(cluster, [{"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                     "spec": {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"],
                              "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "manual-none",
                              "hostPath": {"path": "/tmp/" + name}}}])
    try:
        out = cluster.kubectl("get", "pv", name).stdout
        cols = header(out)
        assert cols[:5] == ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS"]
        assert "CLAIM" in cols and "STORAGECLASS" in cols and cols[-1] == "AGE"
        line = out.splitlines()[1].split()
        assert line[:4] == [name, "2Gi", "RWO", "Retain"]
    finally:
        cluster.kubectl("delete", "pv", name, check=False)


def test_get_storageclass_and_namespace_tables(cluster: Cluster, ns: str) -> None:
    name = unique("sc")
    apply(cluster, [{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
                     "provisioner": "example.com/none", "volumeBindingMode": "WaitForFirstConsumer"}])
    try:
        out = cluster.kubectl("get", "storageclass", name).stdout
        assert header(out) == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                               "ALLOWVOLUMEEXPANSION", "AGE"]
        assert out.splitlines()[1].split()[:5] == [name, "example.com/none", "Delete", "WaitForFirstConsumer",
                                                   "false"]
    finally:
        cluster.kubectl("delete", "storageclass", name, check=False)
    out = cluster.kubectl("get", "namespace", ns).stdout
    assert header(out) == ["NAME", "STATUS", "AGE"]
    assert out.splitlines()[1].split()[:2] == [ns, "Active"]


def test_get_nodes_table(cluster: Cluster) -> None:
    name = unique("node")
    apply(cluster, [{"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": name, "labels": {"node-role.kubernetes.io/worker": ""}}}])
    try:
        out = cluster.kubectl("get", "nodes", name).stdout
        assert header(out) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        line = out.splitlines()[1].split()
        assert line[0] == name and line[2] == "worker"
    finally:
        cluster.kubectl("delete", "node", name, check=False)


def test_get_events_table(cluster: Cluster, ns: str) -> None:
    apply(cluster, [{"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev1", "namespace": ns},
                     "involvedObject": {"kind": "ConfigMap", "name": "thing", "namespace": ns},
                     "reason": "Poked", "message": "someone poked it", "type": "Warning"}])
    out = cluster.kubectl("get", "events", "-n", ns).stdout
    assert header(out) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    line = out.splitlines()[1]
    assert "Warning" in line and "Poked" in line and "configmap/thing" in line and "someone poked it" in line


def test_get_datavolume_table(cluster: Cluster, ns: str) -> None:
    apply(cluster, [datavolume("disk", ns)])
    cluster.kubectl("patch", "dv", "disk", "-n", ns, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"phase": "ImportInProgress", "progress": "42.0%",
                                                 "restartCount": 2}}))
    out = cluster.kubectl("get", "dv", "-n", ns).stdout
    assert header(out) == ["NAME", "PHASE", "PROGRESS", "RESTARTS", "AGE"]
    assert out.splitlines()[1].split()[:4] == ["disk", "ImportInProgress", "42.0%", "2"]


# ---- output formats ------------------------------------------------------------------------------


def test_output_yaml_json_jsonpath_name(cluster: Cluster, ns: str) -> None:
    apply(cluster, [configmap("one", ns, {"app": "x"})])
    as_yaml = yaml.safe_load(cluster.kubectl("get", "cm", "one", "-n", ns, "-o", "yaml").stdout)
    assert as_yaml["kind"] == "ConfigMap" and as_yaml["data"] == {"k": "one"}
    assert as_yaml["metadata"]["labels"] == {"app": "x"}
    as_json = cluster.kubectl_json("get", "cm", "one", "-n", ns)
    assert as_json["metadata"]["uid"] == as_yaml["metadata"]["uid"]
    assert as_json["apiVersion"] == "v1"
    out = cluster.kubectl("get", "cm", "one", "-n", ns, "-o", "jsonpath={.data.k}/{.metadata.labels.app}").stdout
    assert out == "one/x"
    out = cluster.kubectl("get", "cm", "-n", ns, "-l", "app=x", "-o", "name").stdout
    assert out.split() == ["configmap/one"]
    listing = cluster.kubectl_json("get", "cm", "-n", ns, "-l", "app=x")
    assert listing["kind"] == "List" and [i["metadata"]["name"] for i in listing["items"]] == ["one"]


def test_output_name_for_custom_resource(cluster: Cluster, ns: str) -> None:
    apply(cluster, [datavolume("dv-a", ns), datavolume("dv-b", ns)])
    out = cluster.kubectl("get", "datavolumes", "-n", ns, "-o", "name").stdout
    assert out.split() == ["datavolume.cdi.kubevirt.io/dv-a", "datavolume.cdi.kubevirt.io/dv-b"]


def test_show_labels(cluster: Cluster, ns: str) -> None:
    apply(cluster, [configmap("lab", ns, {"tier": "db", "env": "prod"})])
    out = cluster.kubectl("get", "cm", "lab", "-n", ns, "--show-labels").stdout
    assert header(out)[-1] == "LABELS"
    assert out.splitlines()[1].split()[-1] == "env=prod,tier=db"


def test_all_namespaces(cluster: Cluster, ns: str) -> None:
    other = unique("kr-other")
    cluster.kubectl("create", "namespace", other)
    try:
        marker = unique("mark")
        apply(cluster, [configmap("a", ns, {"mark": marker}), configmap("b", other, {"mark": marker})])
        out = cluster.kubectl("get", "cm", "-A", "-l", f"mark={marker}").stdout
        assert header(out)[:2] == ["NAMESPACE", "NAME"]
        assert sorted((r[0], r[1]) for r in rows(out)) == sorted([(ns, "a"), (other, "b")])
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


# ---- selectors and paging ------------------------------------------------------------------------


@pytest.mark.parametrize(("selector", "expected"), [
    ("tier=web", ["a", "b"]),
    ("tier==web", ["a", "b"]),
    ("tier!=web", ["c", "d"]),
    ("tier in (db,cache)", ["c"]),
    ("tier notin (web)", ["c", "d"]),
    ("tier", ["a", "b", "c"]),
    ("!tier", ["d"]),
    ("tier=web,env=prod", ["a"]),
])
def test_label_selectors(cluster: Cluster, ns: str, selector: str, expected: list[str]) -> None:
    apply(cluster, [configmap("a", ns, {"tier": "web", "env": "prod", "set": "sel"}),
                    configmap("b", ns, {"tier": "web", "set": "sel"}),
                    configmap("c", ns, {"tier": "db", "set": "sel"}), configmap("d", ns, {"other": "x", "set": "sel"})])
    # `set` keeps the namespace's own kube-root-ca.crt out of the answer
    out = cluster.kubectl("get", "cm", "-n", ns, "-l", f"{selector},set=sel", "-o", "name").stdout
    names = sorted(line.split("/", 1)[1] for line in out.split())
    assert names == expected


def test_chunk_size_lists_everything(cluster: Cluster, ns: str) -> None:
    apply(cluster, [configmap(f"page-{i}", ns, {"page": "yes"}) for i in range(5)])
    out = cluster.kubectl("get", "cm", "-n", ns, "-l", "page=yes", "--chunk-size=2", "-o", "name").stdout
    assert sorted(out.split()) == [f"configmap/page-{i}" for i in range(5)]
    table = cluster.kubectl("get", "cm", "-n", ns, "-l", "page=yes", "--chunk-size=2").stdout
    assert [r[0] for r in rows(table)] == [f"page-{i}" for i in range(5)]
    # the server really pages: limit=2 gives a continue token and the rest follows it
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=page%3Dyes&limit=2")
    assert status == 200 and len(body["items"]) == 2 and body["metadata"]["continue"]
    # with a selector the server cannot count what remains, so kube leaves remainingItemCount out
    assert "remainingItemCount" not in body["metadata"]
    rest = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps?labelSelector=page%3Dyes&limit=10"
                                  f"&continue={body['metadata']['continue']}")[1]
    assert [i["metadata"]["name"] for i in rest["items"]] == ["page-2", "page-3", "page-4"]
    assert "continue" not in rest["metadata"] or not rest["metadata"]["continue"]


# ---- watch ---------------------------------------------------------------------------------------


class Watcher:
    """`kubectl get -w` in a subprocess, its stdout lines delivered through a queue."""

    def __init__(self, cluster: Cluster, *args: str) -> None:
        cmd = [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate: Any) -> list[str]:
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=WATCH_TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"watch never showed the change; saw {seen}") from None
            if line is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"kubectl -w ended early; saw {seen}; stderr {err}")
            seen.append(line)
            if predicate(line):
                return seen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_watch_sees_changes(cluster: Cluster, ns: str) -> None:
    apply(cluster, [datavolume("watched", ns)])
    watcher = Watcher(cluster, "get", "dv", "-n", ns, "-w")
    try:
        watcher.wait_for(lambda line: line.startswith("watched"))
        cluster.kubectl("patch", "dv", "watched", "-n", ns, "--subresource=status", "--type=merge",
                        "-p", '{"status":{"phase":"Succeeded","progress":"100.0%"}}')
        seen = watcher.wait_for(lambda line: "Succeeded" in line)
        assert seen[-1].split()[:3] == ["watched", "Succeeded", "100.0%"]
        apply(cluster, [datavolume("second", ns)])
        watcher.wait_for(lambda line: line.startswith("second"))
    finally:
        watcher.stop()


def test_watch_output_watch_events_shows_deletion(cluster: Cluster, ns: str) -> None:
    apply(cluster, [configmap("gone", ns)])
    watcher = Watcher(cluster, "get", "cm", "gone", "-n", ns, "-w", "--output-watch-events")
    try:
        watcher.wait_for(lambda line: "ADDED" in line and "gone" in line)
        cluster.kubectl("delete", "cm", "gone", "-n", ns)
        seen = watcher.wait_for(lambda line: "DELETED" in line)
        assert seen[-1].split()[:2] == ["DELETED", "gone"]
    finally:
        watcher.stop()


def test_watch_json_stream(cluster: Cluster, ns: str) -> None:
    apply(cluster, [configmap("js", ns)])
    watcher = Watcher(cluster, "get", "cm", "js", "-n", ns, "-w", "-o", "jsonpath={.data.k}{\"\\n\"}")
    try:
        watcher.wait_for(lambda line: line == "js")
        cluster.kubectl("patch", "cm", "js", "-n", ns, "--type=merge", "-p", '{"data":{"k":"changed"}}')
        watcher.wait_for(lambda line: line == "changed")
    finally:
        watcher.stop()


def test_field_selectors(cluster: Cluster, ns: str) -> None:
    apply(cluster, [configmap("f1", ns), configmap("f2", ns)])
    out = cluster.kubectl("get", "cm", "-n", ns, "--field-selector", "metadata.name=f2", "-o", "name").stdout
    assert out.split() == ["configmap/f2"]
    out = cluster.kubectl("get", "cm", "-n", ns, "--field-selector",
                          "metadata.name!=f2,metadata.name!=kube-root-ca.crt", "-o", "name").stdout
    assert out.split() == ["configmap/f1"]
    bad = cluster.kubectl("get", "cm", "-n", ns, "--field-selector", "data.k=f1", check=False)
    assert bad.returncode == 1
    assert ('Error from server (BadRequest): Unable to find "/v1, Resource=configmaps" that match label selector "", '
            'field selector "data.k=f1": field label not supported: data.k') in bad.stderr


def test_get_missing_and_unknown(cluster: Cluster, ns: str) -> None:
    missing = cluster.kubectl("get", "dv", "nope", "-n", ns, check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): datavolumes.cdi.kubevirt.io "nope" not found' in missing.stderr
    unknown = cluster.kubectl("get", "nosuchthings", check=False)
    assert unknown.returncode == 1 and 'the server doesn\'t have a resource type "nosuchthings"' in unknown.stderr
    empty = cluster.kubectl("get", "pvc", "-n", ns)
    assert empty.stdout == "" and f"No resources found in {ns} namespace." in empty.stderr
