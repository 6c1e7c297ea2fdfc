"""Unit checks of the node agent's pure parts: expansion, env, path map, affinity, phases, volumes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from pycdi.cluster.node.affinity import pod_matches_node, pv_matches_node
from pycdi.cluster.node.env import ConfigError, command_line, container_env, expand
from pycdi.cluster.node.logs import tail
from pycdi.cluster.node.runtime import image_repository, is_worker_image
from pycdi.cluster.node.scheduler import fit_error
from pycdi.cluster.node.status import ContainerRun, merge_conditions, pod_phase, qos_class
from pycdi.cluster.node.volumes import VolumeError, container_path_map, prepare_volumes
from pycdi.datapath import termination
from pycdi.datapath.paths import resolve

Obj = dict[str, Any]
NODE: Obj = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "disk": "ssd", "gen": "5"}}}


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)-$(B)", "1-$(B)"), ("$$(A)", "$(A)"), ("$$$(A)", "$1"), ("a$b", "a$b"), ("$(A", "$(A"),
    ("end$", "end$"), ("$()", "$()"),
])
def test_expand_like_kubelet(text: str, expected: str) -> None:
    assert expand(text, {"A": "1"}) == expected


def test_container_env_order_and_sources() -> None:
    pod: Obj = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
                "spec": {"nodeName": "n1"}, "status": {"podIP": "127.10.0.9"}}
    objects: dict[tuple[str, str], Obj] = {
        ("ConfigMap", "cm"): {"data": {"A": "from-cm", "bad key": "skipped"}},
        ("Secret", "s"): {"data": {"k": base64.b64encode(b"secret").decode()}},
    }
    container: Obj = {"envFrom": [{"configMapRef": {"name": "cm"}}],
                      "env": [{"name": "A", "value": "override-$(A)"},
                              {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                              {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                              {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                              {"name": "M", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                               "divisor": "1Mi"}}},
                              {"name": "O", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k",
                                                                           "optional": True}}}],
                      "resources": {"limits": {"memory": "64Mi"}}}
    env = container_env(pod, container, lambda kind, name: objects.get((kind, name)), {})
    assert env == {"A": "override-from-cm", "S": "secret", "L": "x", "IP": "127.10.0.9", "M": "64"}
    assert command_line({"args": ["-x", "$(A)"]}, env, ["pycdi"]) == ["pycdi", "-x", "override-from-cm"]
    with pytest.raises(ConfigError, match='configmap "nope" not found'):
        container_env(pod, {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "a"}}}]},
                      lambda kind, name: None, {})
    with pytest.raises(ConfigError, match="couldn't find key z in Secret ns/s"):
        container_env(pod, {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "z"}}}]},
                      lambda kind, name: objects.get((kind, name)), {})


def test_resolve_longest_mount_and_identity() -> None:
    mapping = {"/data": "/host/vol", "/data/sub": "/host/other", "/dev/cdi-block-volume": "/dev/loop3"}
    assert resolve("/data/disk.img", mapping) == Path("/host/vol/disk.img")
    assert resolve("/data/sub/x", mapping) == Path("/host/other/x")
    assert resolve("/dev/cdi-block-volume", mapping) == Path("/dev/loop3")
    assert resolve("/database", mapping) == Path("/database")  # a prefix of a name is not a mount
    assert resolve("/tmp/x", {}) == Path("/tmp/x")


def test_termination_message_through_path_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "term"
    monkeypatch.setenv("PYCDI_PATH_MAP", json.dumps({"/dev/termination-log": str(target)}))
    monkeypatch.delenv("PYCDI_TERMINATION_MESSAGE_PATH", raising=False)
    termination.write_json({"b": 1})
    assert target.read_text() == '{"b":1}'
    termination.write_message("x" * 5000)
    assert len(target.read_bytes()) == 4096


def test_node_affinity_and_selectors() -> None:
    def pod(**spec: Any) -> Obj:
        return {"spec": spec}

    assert pod_matches_node(pod(nodeSelector={"disk": "ssd"}), NODE)
    assert not pod_matches_node(pod(nodeSelector={"disk": "hdd"}), NODE)
    term = {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]},
                                 {"key": "zone", "operator": "DoesNotExist"}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    assert pod_matches_node(pod(affinity=affinity), NODE)
    other = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
    assert not pv_matches_node({"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [other]}}}}, NODE)
    assert pv_matches_node({"spec": {}}, NODE)
    assert fit_error("node(s) had volume node affinity conflict") == (
        "0/1 nodes are available: 1 node(s) had volume node affinity conflict. preemption: 0/1 nodes are "
        "available: 1 Preemption is not helpful for scheduling.")


def _c(state: str, code: int = 0, last: bool = False) -> ContainerRun:
    run = ContainerRun(name="c", image="i", state=state, exit_code=code)
    if last:
        run.last_state = {"terminated": {"exitCode": 1}}
    return run


@pytest.mark.parametrize(("init", "main", "policy", "phase"), [
    ([], [_c("waiting")], "Always", "Pending"),
    ([], [_c("running")], "Never", "Running"),
    ([], [_c("terminated", 0)], "Always", "Running"),
    ([], [_c("terminated", 0)], "OnFailure", "Succeeded"),
    ([], [_c("terminated", 1)], "Never", "Failed"),
    ([], [_c("terminated", 1)], "OnFailure", "Running"),
    ([], [_c("waiting", last=True)], "OnFailure", "Running"),
    ([_c("terminated", 1)], [_c("waiting")], "Never", "Failed"),
    ([_c("running")], [_c("waiting")], "Always", "Pending"),
])
def test_pod_phase_like_kubelet(init: list[ContainerRun], main: list[ContainerRun], policy: str, phase: str) -> None:
    assert pod_phase(init, main, policy) == phase


def test_qos_and_conditions() -> None:
    def pod(resources: Obj) -> Obj:
        return {"spec": {"containers": [{"name": "c", "resources": resources}]}}

    assert qos_class(pod({})) == "BestEffort"
    assert qos_class(pod({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Guaranteed"
    assert qos_class(pod({"requests": {"cpu": "500m"}, "limits": {"cpu": "1", "memory": "1Gi"}})) == "Burstable"
    old = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"},
           {"type": "Ready", "status": "False", "lastTransitionTime": "t0"}]
    merged = merge_conditions(old, [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}],
                              "t1")
    by_type = {c["type"]: c for c in merged}
    assert by_type["Ready"]["lastTransitionTime"] == "t0" and by_type["Initialized"]["lastTransitionTime"] == "t1"
    assert by_type["PodScheduled"]["status"] == "True"


def test_worker_image_matching(monkeypatch: pytest.MonkeyPatch) -> None:
    assert image_repository("quay.io/pycdi/pycdi-worker:v1") == "quay.io/pycdi/pycdi-worker"
    assert image_repository("localhost:5000/img@sha256:abc") == "localhost:5000/img"
    assert is_worker_image("quay.io/pycdi/pycdi-worker")
    assert not is_worker_image("quay.io/pycdi/pycdi-worker-evil:latest")


def test_tail_lines() -> None:
    assert tail(b"a\nb\nc", 2) == b"b\nc"
    assert tail(b"a\nb\n", 5) == b"a\nb\n"
    assert tail(b"a\n", 0) == b""


def test_prepare_volumes(tmp_path: Path) -> None:
    objects: dict[tuple[str, str, str], Obj] = {
        ("configmaps", "ns", "cm"): {"data": {"a": "1", "b": "2"}},
        ("secrets", "ns", "s"): {"data": {"t": base64.b64encode(b"tok").decode()}},
        ("persistentvolumeclaims", "ns", "c"): {"spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}},
        ("persistentvolumes", "", "pv1"): {"spec": {"local": {"path": str(tmp_path / "local")}}},
    }
    pod: Obj = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"volumes": [
        {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "b", "path": "sub/b.txt"}]}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
        {"name": "pvc", "persistentVolumeClaim": {"claimName": "c"}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "info", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
    ]}}
    paths = prepare_volumes(pod, tmp_path / "pod", lambda plural, ns, name: objects.get((plural, ns, name)))
    assert (paths["cfg"] / "sub" / "b.txt").read_text() == "2" and not (paths["cfg"] / "a").exists()
    assert (paths["sec"] / "t").read_bytes() == b"tok" and (paths["sec"] / "t").stat().st_mode & 0o777 == 0o400
    assert paths["pvc"] == tmp_path / "local" and paths["tmp"].is_dir()
    assert (paths["info"] / "name").read_text() == "p"
    mapping = container_path_map({"volumeMounts": [{"name": "tmp", "mountPath": "/scratch", "subPath": "w"}],
                                  "volumeDevices": [{"name": "pvc", "devicePath": "/dev/xvda"}]}, paths)
    assert mapping == {"/scratch": str(paths["tmp"] / "w"), "/dev/xvda": str(tmp_path / "local")}
    pod["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "absent"}}]
    with pytest.raises(VolumeError, match='configmap "absent" not found'):
        prepare_volumes(pod, tmp_path / "pod", lambda plural, ns, name: None)
