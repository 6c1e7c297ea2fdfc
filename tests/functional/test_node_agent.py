"""The embedded node agent with the real kubectl: worker pods run, report status, log, restart and stop."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pycdi.cli.worker_probe import pattern_bytes
from tests.support.cluster import Cluster

WORKER = "quay.io/pycdi/pycdi-worker:latest"
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # A short crash back-off base keeps the restart tests quick (kubelet's is 10 s).
    c = Cluster(Path(tmp_path_factory.mktemp("pycdi")), extra_env={"PYCDI_BACKOFF_BASE_SECONDS": "1"})
    c.start()
    try:
        yield c
    finally:
        c.stop()


def new_ns(cluster: Cluster) -> str:
    name = f"node-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


def apply(cluster: Cluster, *objs: Obj) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))


def pod(name: str, ns: str, containers: list[Obj], **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": containers, **spec}}


def probe(name: str, path: str, size: int = 4096, *extra: str, **fields: Any) -> Obj:
    return {"name": name, "image": WORKER,
            "command": ["pycdi", "worker-probe", "--path", path, "--bytes", str(size), *extra], **fields}


def wait(cluster: Cluster, ns: str, what: str, condition: str, timeout: int = 60) -> None:
    cluster.kubectl("wait", "-n", ns, what, f"--for={condition}", f"--timeout={timeout}s", timeout=timeout + 30)


def get_pod(cluster: Cluster, ns: str, name: str) -> Obj:
    result: Obj = cluster.kubectl_json("get", "pod", name, "-n", ns)
    return result


def static_pv(cluster: Cluster, ns: str, claim: str, path: Path, mode: str = "Filesystem",
              affinity_node: str | None = None) -> None:
    """A hostPath PV pre-bound to its claim (both Bound), as a binder would leave them."""
    pv_name = f"pv-{ns}-{claim}"
    pv: Obj = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
               "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "volumeMode": mode,
                        "hostPath": {"path": str(path)}, "storageClassName": "",
                        "persistentVolumeReclaimPolicy": "Retain",
                        "claimRef": {"namespace": ns, "name": claim}}}
    if affinity_node:
        pv["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [affinity_node]}]}]}}
    pvc: Obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim, "namespace": ns},
                "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": mode, "storageClassName": "",
                         "volumeName": pv_name, "resources": {"requests": {"storage": "1Gi"}}}}
    apply(cluster, pv, pvc)
    for kind, name, extra in (("pv", pv_name, []), ("pvc", claim, ["-n", ns])):
        cluster.kubectl("patch", kind, name, *extra, "--subresource=status", "--type=merge",
                        "-p", json.dumps({"status": {"phase": "Bound"}}))
    wait(cluster, ns, f"pvc/{claim}", "jsonpath={.status.phase}=Bound")


# ---- the node --------------------------------------------------------------------------------------


def test_node_is_registered_ready_with_lease(cluster: Cluster) -> None:
    (node,) = cluster.kubectl_json("get", "nodes")["items"]
    name = node["metadata"]["name"]
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == name and labels["kubernetes.io/os"] == "linux"
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-pycdi"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("pycdi://")
    assert int(node["status"]["allocatable"]["pods"]) > 0
    lease = cluster.kubectl_json("get", "lease", name, "-n", "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == name and lease["spec"]["leaseDurationSeconds"] == 40
    assert cluster.get_raw("/readyz/node-agent") == "ok"


# ---- a worker pod and its volumes ------------------------------------------------------------------


def test_worker_writes_filesystem_and_block_volumes(cluster: Cluster, tmp_path: Path) -> None:
    ns = new_ns(cluster)
    fs_dir = tmp_path / "fs"
    fs_dir.mkdir()
    block = tmp_path / "disk.img"
    with open(block, "wb") as f:
        f.truncate(4 << 20)  # a sparse file stands in for the block device
    static_pv(cluster, ns, "fs", fs_dir)
    static_pv(cluster, ns, "blk", block, mode="Block")
    apply(cluster, pod("writer", ns, [probe("fs", "/data/out.bin", 300_000, terminationMessagePolicy="File",
                                            volumeMounts=[{"name": "fs", "mountPath": "/data"}])],
                       restartPolicy="Never",
                       initContainers=[probe("blk", "/dev/cdi-block-volume", 200_000, "--offset", "4096",
                                             volumeDevices=[{"name": "blk", "devicePath": "/dev/cdi-block-volume"}])],
                       volumes=[{"name": "fs", "persistentVolumeClaim": {"claimName": "fs"}},
                                {"name": "blk", "persistentVolumeClaim": {"claimName": "blk"}}]))
    wait(cluster, ns, "pod/writer", "jsonpath={.status.phase}=Succeeded")
    assert (fs_dir / "out.bin").read_bytes() == pattern_bytes(0, 300_000)
    data = block.read_bytes()
    assert data[4096:204_096] == pattern_bytes(4096, 200_000) and data[:4096] == bytes(4096)
    logs = cluster.kubectl("logs", "writer", "-n", ns).stdout
    assert "progress 100% (300000/300000)" in logs and logs.rstrip().endswith("done")
    init_logs = cluster.kubectl("logs", "writer", "-n", ns, "-c", "blk").stdout
    assert "(200000/200000)" in init_logs
    message = cluster.kubectl("get", "pod", "writer", "-n", ns, "-o",
                              "jsonpath={.status.containerStatuses[0].state.terminated.message}").stdout
    assert json.loads(message) == {"bytesWritten": 300_000, "offset": 0, "path": "/data/out.bin"}
    got = get_pod(cluster, ns, "writer")
    status = got["status"]
    assert status["podIP"].startswith("127.") and status["hostIP"] == "127.0.0.1"
    (init,) = status["initContainerStatuses"]
    assert init["state"]["terminated"]["reason"] == "Completed"
    (main,) = status["containerStatuses"]
    assert main["state"]["terminated"]["exitCode"] == 0 and main["restartCount"] == 0
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["PodScheduled"]["status"] == "True"
    assert conditions["Ready"]["status"] == "False" and conditions["Ready"]["reason"] == "PodCompleted"
    events = cluster.kubectl_json("get", "events", "-n", ns, "--field-selector", "involvedObject.name=writer")
    reasons = {e["reason"]: e for e in events["items"]}
    assert reasons["Scheduled"]["message"] == f"Successfully assigned {ns}/writer to {got['spec']['nodeName']}"
    assert "Started" in reasons
    assert cluster.kubectl("logs", "writer", "-n", ns, "--tail", "1").stdout == "done\n"


def test_env_from_secret_configmap_and_field_refs(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    cluster.kubectl("create", "secret", "generic", "creds", "-n", ns, "--from-literal=accessKeyId=AKID")
    cluster.kubectl("create", "configmap", "cfg", "-n", ns, "--from-literal=endpoint=http://x",
                    "--from-literal=MODE=fast")
    script = "echo name=$(POD_NAME) ns=$POD_NS key=$KEY ep=$EP mode=$CFG_MODE ip=$POD_IP ipref=$IP esc='$$(X)'"
    apply(cluster, pod("env", ns, [{
        "name": "c", "image": WORKER, "command": ["sh", "-c"], "args": [script],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "accessKeyId"}}},
                {"name": "EP", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "endpoint"}}}],
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}]}], restartPolicy="Never"))
    wait(cluster, ns, "pod/env", "jsonpath={.status.phase}=Succeeded")
    ip = get_pod(cluster, ns, "env")["status"]["podIP"]
    assert cluster.kubectl("logs", "env", "-n", ns).stdout == (
        f"name=env ns={ns} key=AKID ep=http://x mode=fast ip={ip} ipref={ip} esc=$(X)\n")


def test_missing_secret_is_create_container_config_error(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    apply(cluster, pod("nosecret", ns, [{
        "name": "c", "image": WORKER, "command": ["true"],
        "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]}]))
    wait(cluster, ns, "pod/nosecret",
         "jsonpath={.status.containerStatuses[0].state.waiting.reason}=CreateContainerConfigError")
    waiting = get_pod(cluster, ns, "nosecret")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["message"] == 'secret "absent" not found'


# ---- restarts and failures -------------------------------------------------------------------------


def test_never_failure_reports_error_and_log_fallback(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    apply(cluster, pod("fails", ns, [{"name": "c", "image": WORKER, "command": ["sh", "-c", "echo boom; exit 7"],
                                      "terminationMessagePolicy": "FallbackToLogsOnError"}], restartPolicy="Never"))
    wait(cluster, ns, "pod/fails", "jsonpath={.status.phase}=Failed")
    (status,) = get_pod(cluster, ns, "fails")["status"]["containerStatuses"]
    terminated = status["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (7, "Error", "boom\n")
    assert status["restartCount"] == 0


def test_on_failure_restarts_with_crash_back_off(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    apply(cluster, pod("crash", ns, [{"name": "c", "image": WORKER,
                                      "command": ["sh", "-c", "echo run $(date +%s%N); exit 3"]}],
                       restartPolicy="OnFailure"))
    wait(cluster, ns, "pod/crash", "jsonpath={.status.containerStatuses[0].restartCount}=2")
    wait(cluster, ns, "pod/crash", "jsonpath={.status.containerStatuses[0].state.waiting.reason}=CrashLoopBackOff")
    status = get_pod(cluster, ns, "crash")["status"]
    (c,) = status["containerStatuses"]
    assert c["lastState"]["terminated"]["exitCode"] == 3
    assert "restarting failed container=c pod=crash_" in c["state"]["waiting"]["message"]
    assert status["phase"] == "Running"
    current = cluster.kubectl("logs", "crash", "-n", ns).stdout
    previous = cluster.kubectl("logs", "crash", "-n", ns, "--previous").stdout
    assert current.startswith("run ") and previous.startswith("run ") and current != previous
    events = cluster.kubectl_json("get", "events", "-n", ns, "--field-selector", "reason=BackOff")["items"]
    assert events and events[0]["type"] == "Warning"


def test_on_failure_success_ends_pod(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    apply(cluster, pod("ok", ns, [probe("c", "/tmp/ignored-by-map", 10)], restartPolicy="OnFailure",
                       volumes=[{"name": "scratch", "emptyDir": {}}]))
    wait(cluster, ns, "pod/ok", "jsonpath={.status.phase}=Succeeded")


# ---- deletion, logs -f, other images ---------------------------------------------------------------


def test_delete_stops_process_after_grace_period(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    apply(cluster, pod("sleeper", ns, [probe("c", "/scratch/x", 10, "--sleep", "600", "--ignore-sigterm",
                                             volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])],
                       terminationGracePeriodSeconds=1, volumes=[{"name": "scratch", "emptyDir": {}}]))
    wait(cluster, ns, "pod/sleeper", "condition=Ready")
    uid = get_pod(cluster, ns, "sleeper")["metadata"]["uid"]
    pid = int((cluster.data_dir / "pods" / uid / "c.pid").read_text())
    assert Path(f"/proc/{pid}").exists()
    cluster.kubectl("delete", "pod", "sleeper", "-n", ns, "--timeout=60s")
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    killing = cluster.kubectl_json("get", "events", "-n", ns, "--field-selector", "reason=Killing")["items"]
    assert killing[0]["message"] == "Stopping container c"


def test_logs_follow_streams_until_exit(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    apply(cluster, pod("talker", ns, [{"name": "c", "image": WORKER, "command": [
        "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done"]}], restartPolicy="Never"))
    wait(cluster, ns, "pod/talker", "jsonpath={.status.containerStatuses[0].started}=true")
    out = cluster.kubectl("logs", "-f", "talker", "-n", ns).stdout
    assert out.endswith("line 3\n") and "line 1\n" in out


def test_other_images_are_scheduled_but_not_run(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    apply(cluster, pod("web", ns, [{"name": "c", "image": "nginx:1.27"}]))
    wait(cluster, ns, "pod/web", "jsonpath={.status.containerStatuses[0].state.waiting.reason}=UnsupportedImage")
    got = get_pod(cluster, ns, "web")
    assert got["spec"]["nodeName"] and got["status"]["phase"] == "Pending"
    ready = next(c for c in got["status"]["conditions"] if c["type"] == "ContainersReady")
    assert ready["status"] == "False" and ready["reason"] == "UnsupportedImage"
    assert ready["message"] == "the embedded node runs only pycdi worker images (quay.io/pycdi/pycdi-worker)"
    events = cluster.kubectl_json("get", "events", "-n", ns, "--field-selector", "reason=UnsupportedImage")
    assert events["items"][0]["type"] == "Warning"
    result = cluster.kubectl("logs", "web", "-n", ns, check=False)
    assert 'container "c" in pod "web" is waiting to start: UnsupportedImage' in result.stderr
    cluster.kubectl("delete", "pod", "web", "-n", ns, "--timeout=30s")


# ---- scheduling ------------------------------------------------------------------------------------


def test_volume_node_affinity_conflict_is_unschedulable(cluster: Cluster, tmp_path: Path) -> None:
    ns = new_ns(cluster)
    static_pv(cluster, ns, "far", tmp_path, affinity_node="some-other-node")
    apply(cluster, pod("p", ns, [probe("c", "/d/x")], volumes=[
        {"name": "d", "persistentVolumeClaim": {"claimName": "far"}}]))
    wait(cluster, ns, "pod/p", "condition=PodScheduled=False")
    got = get_pod(cluster, ns, "p")
    cond = next(c for c in got["status"]["conditions"] if c["type"] == "PodScheduled")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"].startswith("0/1 nodes are available: 1 node(s) had volume node affinity conflict.")
    assert "nodeName" not in got["spec"]


def test_node_selector_mismatch_is_unschedulable(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    apply(cluster, pod("p", ns, [probe("c", "/d/x")], nodeSelector={"disktype": "ssd"}))
    wait(cluster, ns, "pod/p", "condition=PodScheduled=False")
    cond = next(c for c in get_pod(cluster, ns, "p")["status"]["conditions"] if c["type"] == "PodScheduled")
    assert "1 node(s) didn't match Pod's node affinity/selector" in cond["message"]


def test_wait_for_first_consumer_claim_gets_selected_node(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    sc = f"wffc-{ns}"
    apply(cluster, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": sc},
                    "provisioner": "example.com/nobody", "volumeBindingMode": "WaitForFirstConsumer"},
          {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c", "namespace": ns},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": sc,
                    "resources": {"requests": {"storage": "1Mi"}}}},
          pod("p", ns, [probe("c", "/d/x")], volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]))
    node = cluster.kubectl_json("get", "nodes")["items"][0]["metadata"]["name"]
    wait(cluster, ns, "pvc/c", "jsonpath={.metadata.annotations.volume\\.kubernetes\\.io/selected-node}=" + node)
    # kube-scheduler binds the pod only once its claims are bound (PreBind waits for the provisioner).
    assert "nodeName" not in get_pod(cluster, ns, "p")["spec"]


# ---- restart of `pycdi up` -------------------------------------------------------------------------


def test_restart_of_pycdi_up_restarts_pods_per_policy(tmp_path: Path) -> None:
    own = Cluster(tmp_path / "restart", extra_env={"PYCDI_BACKOFF_BASE_SECONDS": "1"})
    own.start()
    new_pid = 0
    try:
        ns = new_ns(own)
        for name, policy in (("always", "Always"), ("never", "Never")):
            apply(own, pod(name, ns, [probe("c", "/s/x", 10, "--sleep", "600",
                                            volumeMounts=[{"name": "s", "mountPath": "/s"}])],
                           restartPolicy=policy, volumes=[{"name": "s", "emptyDir": {}}]))
        for name in ("always", "never"):
            wait(own, ns, f"pod/{name}", "condition=Ready")
        uid = get_pod(own, ns, "always")["metadata"]["uid"]
        pid = int((own.data_dir / "pods" / uid / "c.pid").read_text())
        assert own.stop() == 0
        assert not Path(f"/proc/{pid}").exists(), "workers stop with `pycdi up`"
        own.start()
        wait(own, ns, "pod/always", "jsonpath={.status.containerStatuses[0].restartCount}=1")
        wait(own, ns, "pod/always", "condition=Ready")
        wait(own, ns, "pod/never", "jsonpath={.status.phase}=Failed")
        (never,) = get_pod(own, ns, "never")["status"]["containerStatuses"]
        assert never["state"]["terminated"]["reason"] == "ContainerStatusUnknown"
        new_pid = int((own.data_dir / "pods" / uid / "c.pid").read_text())
        assert new_pid != pid and Path(f"/proc/{new_pid}").exists()
    finally:
        own.stop()
    assert new_pid and not os.path.exists(f"/proc/{new_pid}")


# ---- resource limits -------------------------------------------------------------------------------


def _cgroups_writable() -> bool:
    from pycdi.cluster.node import cgroups

    root = cgroups.ROOT
    probe_dir = (root / "pycdi" if (root / "cgroup.controllers").is_file() else root / "memory" / "pycdi")
    try:
        probe_dir.mkdir(parents=True, exist_ok=True)
        return os.access(probe_dir, os.W_OK)
    except OSError:
        return False


@pytest.mark.skipif(not _cgroups_writable(), reason="no writable cgroup hierarchy: limits cannot be enforced here")
def test_memory_limit_ends_in_oom_killed(cluster: Cluster) -> None:
    ns = new_ns(cluster)
    container = probe("hog", "/work/out", 4096, "--hold-memory", "512",
                      resources={"limits": {"memory": "96Mi"}},
                      volumeMounts=[{"name": "work", "mountPath": "/work"}])
    apply(cluster, pod("hog", ns, [container], restartPolicy="Never", volumes=[{"name": "work", "emptyDir": {}}]))
    wait(cluster, ns, "pod/hog", "jsonpath={.status.phase}=Failed")
    (status,) = get_pod(cluster, ns, "hog")["status"]["containerStatuses"]
    terminated = status["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "OOMKilled")


@pytest.mark.skipif(not _cgroups_writable(), reason="no writable cgroup hierarchy: limits cannot be enforced here")
def test_cpu_limit_is_the_cgroup_quota(cluster: Cluster) -> None:
    from pycdi.cluster.node import cgroups

    ns = new_ns(cluster)
    container = probe("slow", "/work/out", 4096, "--sleep", "60", resources={"limits": {"cpu": "250m"}},
                      volumeMounts=[{"name": "work", "mountPath": "/work"}])
    apply(cluster, pod("slow", ns, [container], volumes=[{"name": "work", "emptyDir": {}}]))
    wait(cluster, ns, "pod/slow", "condition=Ready")
    uid = get_pod(cluster, ns, "slow")["metadata"]["uid"]
    root = cgroups.ROOT
    if (root / "cgroup.controllers").is_file():
        assert (root / "pycdi" / f"{uid}-slow" / "cpu.max").read_text().split() == ["25000", "100000"]
    else:
        assert (root / "cpu" / "pycdi" / f"{uid}-slow" / "cpu.cfs_quota_us").read_text().strip() == "25000"
    cluster.kubectl("delete", "pod", "slow", "-n", ns, "--grace-period=1")
    assert not (root / "cpu" / "pycdi" / f"{uid}-slow").exists()
