"""The real kubectl writing to `pycdi up`: create/apply/patch/label/annotate/delete/wait/describe/create-*."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import KUBECTL, Cluster

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = unique("kw")
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def write(tmp_path: Path, name: str, *docs: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def cm(name: str, ns: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, **meta},
            "data": data if data is not None else {"k": "v"}}


def dv(name: str, ns: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": name, "namespace": ns, **meta},
            # A sourceRef to no DataSource: no controller writes its status, so the test's own writes are all there is.
            "spec": {"sourceRef": {"kind": "DataSource", "name": "not-there"},
                     "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}


def exists(cluster: Cluster, *args: str) -> bool:
    result = cluster.kubectl("get", *args, "-o", "name", check=False)
    if result.returncode == 0:
        return True
    assert "NotFound" in result.stderr, result.stderr
    return False


# ---- create / apply ------------------------------------------------------------------------------


def test_create_then_already_exists(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "cm.yaml", cm("dup", ns))
    assert cluster.kubectl("create", "-f", path).stdout.strip() == "configmap/dup created"
    second = cluster.kubectl("create", "-f", path, check=False)
    assert second.returncode == 1
    assert f'Error from server (AlreadyExists): error when creating "{path}": configmaps "dup" already exists' \
        in second.stderr


def test_apply_twice_updates_last_applied(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", cm("app", ns, {"a": "1", "b": "2"}))
    assert cluster.kubectl("apply", "-f", path).stdout.strip() == "configmap/app created"
    first = cluster.kubectl_json("get", "cm", "app", "-n", ns)
    assert json.loads(first["metadata"]["annotations"][LAST_APPLIED])["data"] == {"a": "1", "b": "2"}
    path = write(tmp_path, "a.yaml", cm("app", ns, {"a": "changed"}))
    assert cluster.kubectl("apply", "-f", path).stdout.strip() == "configmap/app configured"
    second = cluster.kubectl_json("get", "cm", "app", "-n", ns)
    # the removed key is pruned because it was in the last-applied configuration
    assert second["data"] == {"a": "changed"}
    assert json.loads(second["metadata"]["annotations"][LAST_APPLIED])["data"] == {"a": "changed"}
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert cluster.kubectl("apply", "-f", path).stdout.strip() == "configmap/app unchanged"


def test_apply_custom_resource(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "dv.yaml", dv("disk", ns))
    assert cluster.kubectl("apply", "-f", path).stdout.strip() == "datavolume.cdi.kubevirt.io/disk created"
    changed = dv("disk", ns, labels={"tier": "gold"})
    path = write(tmp_path, "dv.yaml", changed)
    assert cluster.kubectl("apply", "-f", path).stdout.strip() == "datavolume.cdi.kubevirt.io/disk configured"
    assert cluster.kubectl_json("get", "dv", "disk", "-n", ns)["metadata"]["labels"] == {"tier": "gold"}


def test_server_side_apply_conflicts(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "ssa.yaml", cm("ssa", ns, {"x": "1"}))
    assert cluster.kubectl("apply", "--server-side", "-f", path).stdout.strip() == "configmap/ssa serverside-applied"
    obj = cluster.kubectl_json("get", "cm", "ssa", "-n", ns, "--show-managed-fields")
    managers = {e["manager"]: e for e in obj["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    assert "f:x" in managers["kubectl"]["fieldsV1"]["f:data"]
    path = write(tmp_path, "ssa.yaml", cm("ssa", ns, {"x": "2"}))
    refused = cluster.kubectl("apply", "--server-side", "--field-manager=other", "-f", path, check=False)
    assert refused.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl"' in refused.stderr
    assert ".data.x" in refused.stderr
    assert cluster.kubectl_json("get", "cm", "ssa", "-n", ns)["data"] == {"x": "1"}
    cluster.kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", path)
    obj = cluster.kubectl_json("get", "cm", "ssa", "-n", ns, "--show-managed-fields")
    assert obj["data"] == {"x": "2"}
    managers = {e["manager"]: e for e in obj["metadata"]["managedFields"]}
    assert "f:x" in managers["other"]["fieldsV1"]["f:data"]
    assert "kubectl" not in managers  # it lost its only field


def test_server_side_apply_co_owns_equal_values(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "co.yaml", cm("co", ns, {"x": "1"}))
    cluster.kubectl("create", "-f", path)
    cluster.kubectl("apply", "--server-side", "-f", path)
    obj = cluster.kubectl_json("get", "cm", "co", "-n", ns, "--show-managed-fields")
    assert {e["manager"] for e in obj["metadata"]["managedFields"]} == {"kubectl-create", "kubectl"}


def test_apply_dry_run_server_stores_nothing(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    path = write(tmp_path, "dry.yaml", cm("dry", ns), dv("drydv", ns))
    out = cluster.kubectl("apply", "--dry-run=server", "-f", path).stdout
    assert "configmap/dry created (server dry run)" in out
    assert "datavolume.cdi.kubevirt.io/drydv created (server dry run)" in out
    assert not exists(cluster, "cm", "dry", "-n", ns)
    assert not exists(cluster, "dv", "drydv", "-n", ns)
    cluster.kubectl("apply", "-f", path)
    path = write(tmp_path, "dry.yaml", cm("dry", ns, {"k": "other"}))
    cluster.kubectl("apply", "--dry-run=server", "-f", path)
    assert cluster.kubectl_json("get", "cm", "dry", "-n", ns)["data"] == {"k": "v"}


# ---- patch / label / annotate --------------------------------------------------------------------


def test_patch_builtin_all_types(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "configmap", "p", "-n", ns, "--from-literal=a=1", "--from-literal=b=2")
    cluster.kubectl("patch", "cm", "p", "-n", ns, "-p", '{"data":{"c":"3"}}')  # strategic is the default
    cluster.kubectl("patch", "cm", "p", "-n", ns, "--type=merge", "-p", '{"data":{"a":null}}')
    cluster.kubectl("patch", "cm", "p", "-n", ns, "--type=json",
                    "-p", '[{"op":"replace","path":"/data/b","value":"20"}]')
    assert cluster.kubectl_json("get", "cm", "p", "-n", ns)["data"] == {"b": "20", "c": "3"}
    failed = cluster.kubectl("patch", "cm", "p", "-n", ns, "--type=json",
                             "-p", '[{"op":"test","path":"/data/b","value":"nope"}]', check=False)
    # kube answers a failed `test` op with a generic 422 (reason Invalid), which kubectl prints like this
    assert failed.returncode == 1
    assert "The request is invalid: the server rejected our request due to an error in our request" in failed.stderr
    status, body, _ = cluster.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/p",
                                      [{"op": "test", "path": "/data/b", "value": "nope"}],
                                      content_type="application/json-patch+json")
    assert status == 422 and body["reason"] == "Invalid"


def test_strategic_patch_merges_pod_containers_by_name(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod", "namespace": ns},
        "spec": {"containers": [{"name": "a", "image": "img:1"}, {"name": "b", "image": "img:1"}]}}))
    cluster.kubectl("patch", "pod", "pod", "-n", ns, "-p",
                    '{"spec":{"containers":[{"name":"b","image":"img:2"}]}}')
    containers = cluster.kubectl_json("get", "pod", "pod", "-n", ns)["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", "img:1"), ("b", "img:2")]


def test_patch_custom_resource(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "-f", write(tmp_path, "dv.yaml", dv("crp", ns)))
    refused = cluster.kubectl("patch", "dv", "crp", "-n", ns, "-p", '{"metadata":{"labels":{"a":"b"}}}', check=False)
    assert refused.returncode == 1
    assert "the body of the request was in an unknown format - accepted media types include: " \
           "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml" in refused.stderr
    out = cluster.kubectl("patch", "dv", "crp", "-n", ns, "--type", "merge", "-p", '{"metadata":{"labels":{"a":"b"}}}')
    assert out.stdout.strip() == "datavolume.cdi.kubevirt.io/crp patched"
    cluster.kubectl("patch", "dv", "crp", "-n", ns, "--type", "json",
                    "-p", '[{"op":"add","path":"/metadata/labels/c","value":"d"}]')
    assert cluster.kubectl_json("get", "dv", "crp", "-n", ns)["metadata"]["labels"] == {"a": "b", "c": "d"}


def test_patch_status_subresource(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "-f", write(tmp_path, "dv.yaml", dv("st", ns)))
    before = cluster.kubectl_json("get", "dv", "st", "-n", ns)
    # status written through the main resource is ignored (the CRD has a status subresource)
    cluster.kubectl("patch", "dv", "st", "-n", ns, "--type=merge", "-p", '{"status":{"phase":"Bogus"}}')
    assert cluster.kubectl_json("get", "dv", "st", "-n", ns).get("status", {}).get("phase") != "Bogus"
    cluster.kubectl("patch", "dv", "st", "-n", ns, "--subresource=status", "--type=merge",
                    "-p", '{"status":{"phase":"Pending"},"spec":{"source":{"http":{"url":"http://x"}}}}')
    after = cluster.kubectl_json("get", "dv", "st", "-n", ns)
    assert after["status"]["phase"] == "Pending"
    assert after["spec"]["sourceRef"] == {"kind": "DataSource", "name": "not-there"}  # spec is ignored on /status
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


def test_label_and_annotate(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "configmap", "la", "-n", ns)
    assert cluster.kubectl("label", "cm", "la", "-n", ns, "color=red").stdout.strip() == "configmap/la labeled"
    refused = cluster.kubectl("label", "cm", "la", "-n", ns, "color=blue", check=False)
    assert refused.returncode == 1 and "'color' already has a value (red), and --overwrite is false" in refused.stderr
    cluster.kubectl("label", "cm", "la", "-n", ns, "color=blue", "--overwrite")
    cluster.kubectl("annotate", "cm", "la", "-n", ns, "note=hello", "other=x")
    refused = cluster.kubectl("annotate", "cm", "la", "-n", ns, "note=bye", check=False)
    assert refused.returncode == 1 and "--overwrite is false" in refused.stderr
    cluster.kubectl("annotate", "cm", "la", "-n", ns, "note=bye", "--overwrite")
    meta = cluster.kubectl_json("get", "cm", "la", "-n", ns)["metadata"]
    assert meta["labels"] == {"color": "blue"}
    assert meta["annotations"] == {"note": "bye", "other": "x"}
    cluster.kubectl("label", "cm", "la", "-n", ns, "color-")
    cluster.kubectl("annotate", "cm", "la", "-n", ns, "note-")
    meta = cluster.kubectl_json("get", "cm", "la", "-n", ns)["metadata"]
    assert not meta.get("labels")
    assert meta["annotations"] == {"other": "x"}


def test_label_custom_resource(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "-f", write(tmp_path, "dv.yaml", dv("lab", ns)))
    cluster.kubectl("label", "dv", "lab", "-n", ns, "k=v")
    cluster.kubectl("annotate", "dv", "lab", "-n", ns, "a=b")
    meta = cluster.kubectl_json("get", "dv", "lab", "-n", ns)["metadata"]
    assert meta["labels"] == {"k": "v"} and meta["annotations"]["a"] == "b"


# ---- delete / finalizers / cascade ---------------------------------------------------------------


def test_delete_plain(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "-f", write(tmp_path, "d.yaml", cm("gone", ns), dv("gonedv", ns)))
    assert cluster.kubectl("delete", "cm", "gone", "-n", ns).stdout.strip() == 'configmap "gone" deleted'
    assert cluster.kubectl("delete", "dv", "gonedv", "-n", ns).stdout.strip() == \
        'datavolume.cdi.kubevirt.io "gonedv" deleted'
    assert not exists(cluster, "cm", "gone", "-n", ns)
    assert not exists(cluster, "dv", "gonedv", "-n", ns)
    again = cluster.kubectl("delete", "cm", "gone", "-n", ns, check=False)
    assert again.returncode == 1
    assert 'Error from server (NotFound): configmaps "gone" not found' in again.stderr


def test_delete_with_finalizer(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "-f", write(tmp_path, "f.yaml", cm("held", ns, finalizers=["example.com/hold"])))
    cluster.kubectl("delete", "cm", "held", "-n", ns, "--wait=false")
    obj = cluster.kubectl_json("get", "cm", "held", "-n", ns)
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["finalizers"] == ["example.com/hold"]
    # while the finalizer holds it, waiting for its deletion times out
    held = cluster.kubectl("wait", "--for=delete", "cm/held", "-n", ns, "--timeout=1s", check=False)
    assert held.returncode == 1 and "timed out waiting for the condition" in held.stderr
    waiter = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "wait", "--for=delete",
                               "cm/held", "-n", ns, "--timeout=60s"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        cluster.kubectl("patch", "cm", "held", "-n", ns, "--type=json",
                        "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        out, err = waiter.communicate(timeout=90)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    # empty when the object was already gone before kubectl wait first looked
    assert out.strip() in ("configmap/held condition met", "")
    assert not exists(cluster, "cm", "held", "-n", ns)


def owner_and_dependent(cluster: Cluster, ns: str, suffix: str) -> tuple[str, str]:
    owner, dep = f"owner-{suffix}", f"dep-{suffix}"
    cluster.kubectl("create", "configmap", owner, "-n", ns)
    uid = cluster.kubectl_json("get", "cm", owner, "-n", ns)["metadata"]["uid"]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(cm(dep, ns, ownerReferences=[
        {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid, "blockOwnerDeletion": True}])))
    return owner, dep


@pytest.mark.parametrize("policy", ["background", "foreground"])
def test_cascade_deletes_dependents(cluster: Cluster, ns: str, policy: str) -> None:
    owner, dep = owner_and_dependent(cluster, ns, policy)
    cluster.kubectl("delete", "cm", owner, "-n", ns, f"--cascade={policy}")
    cluster.kubectl("wait", "--for=delete", f"cm/{dep}", "-n", ns, "--timeout=60s")
    assert not exists(cluster, "cm", owner, "-n", ns)
    assert not exists(cluster, "cm", dep, "-n", ns)


def test_cascade_orphan_keeps_dependents(cluster: Cluster, ns: str) -> None:
    owner, dep = owner_and_dependent(cluster, ns, "orphan")
    cluster.kubectl("delete", "cm", owner, "-n", ns, "--cascade=orphan")
    cluster.kubectl("wait", "--for=delete", f"cm/{owner}", "-n", ns, "--timeout=60s")
    kept = cluster.kubectl_json("get", "cm", dep, "-n", ns)
    assert not kept["metadata"].get("ownerReferences")


def test_foreground_waits_for_blocking_dependent(cluster: Cluster, ns: str) -> None:
    owner, dep = owner_and_dependent(cluster, ns, "fg-hold")
    cluster.kubectl("patch", "cm", dep, "-n", ns, "--type=merge",
                    "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    cluster.kubectl("delete", "cm", owner, "-n", ns, "--cascade=foreground", "--wait=false")
    held = cluster.kubectl_json("get", "cm", owner, "-n", ns)
    assert held["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in held["metadata"]["finalizers"]
    cluster.kubectl("wait", "--for=jsonpath={.metadata.deletionTimestamp}", f"cm/{dep}", "-n", ns,
                    "--timeout=60s", check=False)
    cluster.kubectl("patch", "cm", dep, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    cluster.kubectl("wait", "--for=delete", f"cm/{owner}", f"cm/{dep}", "-n", ns, "--timeout=60s")


# ---- wait ----------------------------------------------------------------------------------------


def test_wait_for_jsonpath_and_condition(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "-f", write(tmp_path, "w.yaml", dv("waited", ns)))
    waiter = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "wait", "-n", ns,
                               "--for=jsonpath={.status.phase}=Succeeded", "dv/waited", "--timeout=60s"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # a different process makes the phase happen
        cluster.kubectl("patch", "dv", "waited", "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"phase": "Succeeded", "progress": "100.0%", "conditions": [
                {"type": "Ready", "status": "True", "reason": "Completed", "message": "done",
                 "lastTransitionTime": "2026-01-01T00:00:00Z", "lastHeartbeatTime": "2026-01-01T00:00:00Z"}]}}))
        out, err = waiter.communicate(timeout=90)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, err
    assert out.strip() == "datavolume.cdi.kubevirt.io/waited condition met"
    out = cluster.kubectl("wait", "-n", ns, "--for=condition=Ready", "dv/waited", "--timeout=30s").stdout
    assert out.strip() == "datavolume.cdi.kubevirt.io/waited condition met"
    timed_out = cluster.kubectl("wait", "-n", ns, "--for=condition=Bound", "dv/waited", "--timeout=1s", check=False)
    assert timed_out.returncode == 1 and "timed out waiting for the condition" in timed_out.stderr


def test_wait_for_delete(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "configmap", "bye", "-n", ns)
    cluster.kubectl("delete", "cm", "bye", "-n", ns, "--wait=false")
    out = cluster.kubectl("wait", "--for=delete", "cm/bye", "-n", ns, "--timeout=30s")
    assert out.returncode == 0


# ---- describe ------------------------------------------------------------------------------------


def event_for(ns: str, name: str, kind: str, api_version: str, uid: str, reason: str, message: str
              ) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": unique("ev"), "namespace": ns},
            "involvedObject": {"kind": kind, "name": name, "namespace": ns, "uid": uid, "apiVersion": api_version},
            "reason": reason, "message": message, "type": "Warning", "count": 1,
            "source": {"component": "tester"}}


def test_describe_pvc_dv_namespace(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "claim", "namespace": ns},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "none-such",
                      "resources": {"requests": {"storage": "3Gi"}}}}
    cluster.kubectl("create", "-f", write(tmp_path, "c.yaml", claim, dv("described", ns)))
    pvc_uid = cluster.kubectl_json("get", "pvc", "claim", "-n", ns)["metadata"]["uid"]
    dv_uid = cluster.kubectl_json("get", "dv", "described", "-n", ns)["metadata"]["uid"]
    cluster.kubectl("create", "-f", write(tmp_path, "e.yaml",
                                          event_for(ns, "claim", "PersistentVolumeClaim", "v1", pvc_uid,
                                                    "ProvisioningFailed", "no such class"),
                                          event_for(ns, "described", "DataVolume", "cdi.kubevirt.io/v1beta1",
                                                    dv_uid, "Pending", "waiting for the claim")))
    out = cluster.kubectl("describe", "pvc", "claim", "-n", ns).stdout
    assert "Name:" in out and "claim" in out
    assert "StorageClass:" in out and "none-such" in out
    assert "Pending" in out
    assert "ProvisioningFailed" in out and "no such class" in out
    out = cluster.kubectl("describe", "dv", "described", "-n", ns).stdout
    assert "Kind:         DataVolume" in out or "DataVolume" in out
    assert "Source Ref:" in out and "not-there" in out
    assert "waiting for the claim" in out
    out = cluster.kubectl("describe", "namespace", ns).stdout
    assert f"Name:         {ns}" in out
    assert "Status:       Active" in out


# ---- discovery-driven commands -------------------------------------------------------------------


def test_api_resources(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources").stdout
    table = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    expected = {
        "datavolumes": ("dv,dvs", "cdi.kubevirt.io/v1beta1", "true", "DataVolume"),
        "objecttransfers": ("ot,ots", "cdi.kubevirt.io/v1beta1", "false", "ObjectTransfer"),
        "volumesnapshots": ("vs", "snapshot.storage.k8s.io/v1", "true", "VolumeSnapshot"),
        "virtualmachines": ("vm,vms", "kubevirt.io/v1", "true", "VirtualMachine"),
        "persistentvolumeclaims": ("pvc", "v1", "true", "PersistentVolumeClaim"),
        "storageclasses": ("sc", "storage.k8s.io/v1", "false", "StorageClass"),
    }
    for plural, (short, gv, namespaced, kind) in expected.items():
        assert table[plural][1:] == [short, gv, namespaced, kind], plural
    assert "hostpathprovisioners" in table and table["hostpathprovisioners"][-1] == "HostPathProvisioner"
    assert "cdiconfigs" in table and "storageprofiles" in table and "datasources" in table
    names = cluster.kubectl("api-resources", "--api-group=cdi.kubevirt.io", "-o", "name").stdout.split()
    assert "datavolumes.cdi.kubevirt.io" in names
    assert all(n.endswith(".cdi.kubevirt.io") for n in names)


def test_short_names_resolve(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "-f", write(tmp_path, "s.yaml", dv("short", ns)))
    assert cluster.kubectl("get", "dvs", "-n", ns, "-o", "name").stdout.split() == \
        ["datavolume.cdi.kubevirt.io/short"]
    assert cluster.kubectl("get", "datavolume.cdi.kubevirt.io", "-n", ns, "-o", "name").stdout.split() == \
        ["datavolume.cdi.kubevirt.io/short"]


def test_explain(cluster: Cluster) -> None:
    out = cluster.kubectl("explain", "dv.spec.source.http").stdout
    assert "KIND:       DataVolume" in out
    assert "VERSION:    v1beta1" in out
    assert "url" in out and "certConfigMap" in out and "secretRef" in out
    missing = cluster.kubectl("explain", "dv.spec.nosuchfield", check=False)
    assert missing.returncode == 1 and 'field "nosuchfield" does not exist' in missing.stderr


# ---- typed create subcommands (protobuf request bodies) -----------------------------------------


def test_create_typed_objects(cluster: Cluster) -> None:
    ns = unique("kwc")
    assert cluster.kubectl("create", "namespace", ns).stdout.strip() == f"namespace/{ns} created"
    try:
        def run(*args: str) -> str:
            return cluster.kubectl("create", *args).stdout.strip()

        assert run("configmap", "c1", "-n", ns, "--from-literal=a=1") == "configmap/c1 created"
        assert run("secret", "generic", "s1", "-n", ns, "--from-literal=pw=hunter2") == "secret/s1 created"
        assert run("serviceaccount", "robot", "-n", ns) == "serviceaccount/robot created"
        assert run("role", "reader", "-n", ns, "--verb=get,list", "--resource=pods") == \
            "role.rbac.authorization.k8s.io/reader created"
        assert run("rolebinding", "rb", "-n", ns, "--role=reader", f"--serviceaccount={ns}:robot") == \
            "rolebinding.rbac.authorization.k8s.io/rb created"
        cr, crb = unique("cr"), unique("crb")
        assert run("clusterrole", cr, "--verb=get", "--resource=datavolumes.cdi.kubevirt.io") == \
            f"clusterrole.rbac.authorization.k8s.io/{cr} created"
        assert run("clusterrolebinding", crb, f"--clusterrole={cr}", "--user=someone") == \
            f"clusterrolebinding.rbac.authorization.k8s.io/{crb} created"
        assert cluster.kubectl_json("get", "cm", "c1", "-n", ns)["data"] == {"a": "1"}
        secret = cluster.kubectl_json("get", "secret", "s1", "-n", ns)
        assert secret["data"] == {"pw": "aHVudGVyMg=="} and secret["type"] == "Opaque"
        role = cluster.kubectl_json("get", "role", "reader", "-n", ns)
        assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
        binding = cluster.kubectl_json("get", "rolebinding", "rb", "-n", ns)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "robot", "namespace": ns}]
        clusterrole = cluster.kubectl_json("get", "clusterrole", cr)
        assert clusterrole["rules"] == [{"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes"],
                                         "verbs": ["get"]}]
        assert cluster.kubectl_json("get", "clusterrolebinding", crb)["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "someone"}]
        cluster.kubectl("delete", "clusterrolebinding", crb)
        cluster.kubectl("delete", "clusterrole", cr)
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_replace_and_delete_by_label(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    for i in range(3):
        cluster.kubectl("create", "configmap", f"r{i}", "-n", ns, f"--from-literal=a={i}")
    cluster.kubectl("label", "cm", "r0", "r1", "-n", ns, "doomed=yes")
    current = cluster.kubectl("get", "cm", "r2", "-n", ns, "-o", "yaml").stdout
    out = cluster.kubectl("replace", "-f", "-", input=current.replace('a: "2"', 'a: "22"')).stdout
    assert out.strip() == "configmap/r2 replaced"
    assert cluster.kubectl_json("get", "cm", "r2", "-n", ns)["data"] == {"a": "22"}
    # replacing from the stale copy carries the old resourceVersion: 409
    stale = cluster.kubectl("replace", "-f", "-", input=current, check=False)
    assert stale.returncode == 1
    assert 'Operation cannot be fulfilled on configmaps "r2": the object has been modified' in stale.stderr
    out = cluster.kubectl("delete", "cm", "-n", ns, "-l", "doomed=yes").stdout
    assert sorted(out.splitlines()) == ['configmap "r0" deleted', 'configmap "r1" deleted']
    assert cluster.kubectl("get", "cm", "-n", ns, "-l", "doomed=yes", "-o", "name").stdout == ""
    assert exists(cluster, "cm", "r2", "-n", ns)
