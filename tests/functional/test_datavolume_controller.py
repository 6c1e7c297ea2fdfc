"""The DataVolume controller against `pycdi up`, through the real kubectl: PVC rendering and annotations, status
phases, conditions, progress and events from the PVC, WaitForFirstConsumer, adoption, and whole imports."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

import pycdi.controllers.setup as controller_setup
from tests.support.cluster import Cluster
from tests.support.fixtures import NginxFactory
from tests.support.images import Corpus

GI = 1 << 30
# The import controller (PVC -> importer pod) lands separately; the end-to-end tests need it.
needs_importer = pytest.mark.skipif(not hasattr(controller_setup, "importpod"),
                                    reason="the import controller is not registered yet")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = unique("dv")
    cluster.kubectl("create", "namespace", name)
    return name


def apply(cluster: Cluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("create", "-f", "-", input=json.dumps(obj))


def data_volume(name: str, ns: str, source: dict[str, Any], size: str = "1Gi", *, api: str = "storage",
                annotations: dict[str, str] | None = None, **storage: Any) -> dict[str, Any]:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
            "spec": {"source": source, api: {"resources": {"requests": {"storage": size}}, **storage}}}


def wait(cluster: Cluster, obj: str, ns: str, jsonpath: str, value: str, timeout: str = "60s") -> None:
    cluster.kubectl("wait", "-n", ns, f"--for=jsonpath={{{jsonpath}}}={value}", obj, f"--timeout={timeout}")


def get(cluster: Cluster, kind: str, name: str, ns: str) -> dict[str, Any]:
    obj: dict[str, Any] = cluster.kubectl_json("get", kind, name, "-n", ns)
    return obj


def condition(dv: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in dv["status"]["conditions"] if c["type"] == type_)


def events(cluster: Cluster, ns: str, name: str) -> list[tuple[str, str, str]]:
    items = cluster.kubectl_json("get", "events", "-n", ns,
                                 "--field-selector", f"involvedObject.kind=DataVolume,involvedObject.name={name}")
    return [(e["type"], e["reason"], e["message"]) for e in items["items"]]


def wffc_class(cluster: Cluster) -> str:
    name = unique("wffc")
    apply(cluster, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
                    "provisioner": "kubevirt.io/hostpath-provisioner", "volumeBindingMode": "WaitForFirstConsumer"})
    cluster.kubectl("wait", "--for=jsonpath={.status.claimPropertySets[0].volumeMode}=Filesystem",
                    f"storageprofile/{name}", "--timeout=60s")
    return name


def test_blank_dv_creates_its_pvc_as_upstream(cluster: Cluster, ns: str) -> None:
    apply(cluster, data_volume("blank", ns, {"blank": {}}, annotations={"example.com/team": "storage"}))
    cluster.kubectl("wait", "-n", ns, "--for=create", "pvc/blank", "--timeout=60s")
    pvc = get(cluster, "pvc", "blank", ns)
    dv = get(cluster, "dv", "blank", ns)
    # 1Gi through upstream's GetRequiredSpace with the default 6% overhead of the `local` class.
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1138166334"
    assert pvc["spec"]["storageClassName"] == "local"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    anno = pvc["metadata"]["annotations"]
    assert anno["cdi.kubevirt.io/storage.import.source"] == "none"
    assert anno["cdi.kubevirt.io/storage.contentType"] == "kubevirt"
    assert anno["cdi.kubevirt.io/storage.preallocation.requested"] == "false"
    assert anno["cdi.kubevirt.io/storage.import.importPodName"] == "importer-blank"
    assert anno["cdi.kubevirt.io/createdForDataVolume"] == dv["metadata"]["uid"]
    assert anno["example.com/team"] == "storage"  # the DV's annotations pass through
    assert pvc["metadata"]["labels"]["app"] == "containerized-data-importer"
    assert pvc["metadata"]["ownerReferences"] == [{
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "name": "blank", "uid": dv["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}]
    cluster.kubectl("wait", "-n", ns, "--for=condition=Bound", "dv/blank", "--timeout=60s")
    dv = get(cluster, "dv", "blank", ns)
    assert dv["status"]["claimName"] == "blank"
    assert condition(dv, "Bound")["message"] == "PVC blank Bound"
    assert ("Normal", "Bound", "PVC blank Bound") in events(cluster, ns, "blank")


def test_http_dv_annotations_and_pvc_api(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "configmap", "ca", "-n", ns, "--from-literal=ca.pem=x")
    source = {"http": {"url": "http://127.0.0.1:1/disk.img", "certConfigMap": "ca", "secretRef": "creds",
                       "extraHeaders": ["X-A: 1"], "checksum": "sha256:" + "0" * 64}}
    dv = data_volume("web", ns, source, "64Mi", api="pvc", accessModes=["ReadWriteOnce"])
    dv["spec"]["contentType"] = "archive"
    dv["spec"]["preallocation"] = True
    apply(cluster, dv)
    cluster.kubectl("wait", "-n", ns, "--for=create", "pvc/web", "--timeout=60s")
    pvc = get(cluster, "pvc", "web", ns)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "64Mi"  # the pvc API is not inflated
    anno = pvc["metadata"]["annotations"]
    assert anno["cdi.kubevirt.io/storage.import.endpoint"] == "http://127.0.0.1:1/disk.img"
    assert anno["cdi.kubevirt.io/storage.import.source"] == "http"
    assert anno["cdi.kubevirt.io/storage.import.certConfigMap"] == "ca"
    assert anno["cdi.kubevirt.io/storage.import.secretName"] == "creds"
    assert anno["cdi.kubevirt.io/storage.import.extraHeaders.0"] == "X-A: 1"
    assert anno["cdi.kubevirt.io/storage.import.checksum"] == "sha256:" + "0" * 64
    assert anno["cdi.kubevirt.io/storage.contentType"] == "archive"
    assert anno["cdi.kubevirt.io/storage.preallocation.requested"] == "true"


def test_wffc_phase_and_pvc_annotations_drive_the_status(cluster: Cluster, ns: str) -> None:
    sc = wffc_class(cluster)
    apply(cluster, data_volume("late", ns, {"blank": {}}, storageClassName=sc))
    wait(cluster, "dv/late", ns, ".status.phase", "WaitForFirstConsumer")
    dv = get(cluster, "dv", "late", ns)
    assert dv["status"]["progress"] == "N/A"
    assert (condition(dv, "Bound")["status"], condition(dv, "Bound")["reason"],
            condition(dv, "Bound")["message"]) == ("False", "Pending", "PVC late Pending")
    assert condition(dv, "Ready")["status"] == "False"
    # The import controller leaves an unbound WaitForFirstConsumer claim alone: these annotations are ours.
    cluster.kubectl("annotate", "--overwrite", "-n", ns, "pvc/late",
                    "cdi.kubevirt.io/storage.populator.progress=45.67%", "cdi.kubevirt.io/storage.pod.restarts=2",
                    "cdi.kubevirt.io/storage.condition.running=true",
                    "cdi.kubevirt.io/storage.condition.running.reason=Pod is running")
    wait(cluster, "dv/late", ns, ".status.progress", "45.67%")
    dv = get(cluster, "dv", "late", ns)
    assert dv["status"]["restartCount"] == 2
    assert condition(dv, "Running")["status"] == "True"
    assert condition(dv, "Running")["reason"] == "Pod is running"
    assert condition(dv, "Ready")["reason"] == "TransferRunning"
    cluster.kubectl("annotate", "--overwrite", "-n", ns, "pvc/late", "cdi.kubevirt.io/storage.pod.phase=Succeeded",
                    "cdi.kubevirt.io/storage.condition.running=false",
                    "cdi.kubevirt.io/storage.condition.running.reason=Completed")
    wait(cluster, "dv/late", ns, ".status.phase", "Succeeded")
    dv = get(cluster, "dv", "late", ns)
    assert dv["status"]["progress"] == "100.0%"
    assert condition(dv, "Ready")["status"] == "True"
    assert ("Normal", "ImportSucceeded", "Successfully imported into PVC late") in events(cluster, ns, "late")
    out = cluster.kubectl("get", "dv", "late", "-n", ns).stdout
    assert "Succeeded" in out and "100.0%" in out


def test_immediate_binding_annotation_passes_through(cluster: Cluster, ns: str) -> None:
    sc = wffc_class(cluster)
    apply(cluster, data_volume("now", ns, {"blank": {}}, storageClassName=sc,
                               annotations={"cdi.kubevirt.io/storage.bind.immediate.requested": ""}))
    cluster.kubectl("wait", "-n", ns, "--for=create", "pvc/now", "--timeout=60s")
    pvc = get(cluster, "pvc", "now", ns)
    assert pvc["metadata"]["annotations"]["cdi.kubevirt.io/storage.bind.immediate.requested"] == ""
    dv = get(cluster, "dv", "now", ns)
    assert dv.get("status", {}).get("phase") != "WaitForFirstConsumer"


def test_dv_adopts_a_pvc_populated_for_it(cluster: Cluster, ns: str) -> None:
    apply(cluster, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "ready", "namespace": ns,
                                 "annotations": {"cdi.kubevirt.io/storage.populatedFor": "ready"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}})
    wait(cluster, "pvc/ready", ns, ".status.phase", "Bound")
    apply(cluster, data_volume("ready", ns, {"blank": {}}))
    wait(cluster, "dv/ready", ns, ".status.phase", "Succeeded")
    dv = get(cluster, "dv", "ready", ns)
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/storage.prePopulated"] == "ready"
    pvc = get(cluster, "pvc", "ready", ns)
    assert pvc["metadata"]["ownerReferences"][0]["uid"] == dv["metadata"]["uid"]
    assert "cdi.kubevirt.io/storage.import.source" not in pvc["metadata"]["annotations"]  # nothing imported


def test_claim_not_valid_until_the_defaults_configmap_says_how(cluster: Cluster, ns: str) -> None:
    sc = unique("bare")
    apply(cluster, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": sc},
                    "provisioner": "example.com/unknown"})
    cluster.kubectl("wait", "--for=jsonpath={.status.provisioner}=example.com/unknown", f"storageprofile/{sc}",
                    "--timeout=60s")
    apply(cluster, data_volume("bare", ns, {"blank": {}}, storageClassName=sc))
    wait(cluster, "dv/bare", ns, ".status.conditions[?(@.type=='Bound')].reason", "ErrClaimNotValid")
    dv = get(cluster, "dv", "bare", ns)
    assert condition(dv, "Bound")["message"] == f"no accessMode specified in StorageProfile {sc}"
    assert ("Warning", "ErrClaimNotValid",
            f"Spec is missing accessMode and volumeMode, cannot get access mode from StorageProfile {sc}") in \
        events(cluster, ns, "bare")
    cm_name = "kubevirt-storage-class-defaults"
    data = {f"{sc}.accessMode": "ReadWriteMany", f"{sc}.volumeMode": "Block"}
    if cluster.kubectl("get", "configmap", cm_name, "-n", "cdi", check=False).returncode == 0:
        cluster.kubectl("patch", "configmap", cm_name, "-n", "cdi", "--type=merge", "-p", json.dumps({"data": data}))
    else:
        apply(cluster, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm_name, "namespace": "cdi"},
                        "data": data})
    cluster.kubectl("wait", "-n", ns, "--for=create", "pvc/bare", "--timeout=60s")
    pvc = get(cluster, "pvc", "bare", ns)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["spec"]["volumeMode"] == "Block"
    assert pvc["spec"]["resources"]["requests"]["storage"] == str(GI)  # Block: no overhead (upstream: plain bytes)


def test_deleting_the_dv_deletes_its_pvc(cluster: Cluster, ns: str) -> None:
    sc = wffc_class(cluster)
    apply(cluster, data_volume("gone", ns, {"blank": {}}, storageClassName=sc))
    cluster.kubectl("wait", "-n", ns, "--for=create", "pvc/gone", "--timeout=60s")
    cluster.kubectl("delete", "dv", "gone", "-n", ns)
    cluster.kubectl("wait", "-n", ns, "--for=delete", "pvc/gone", "--timeout=60s")


def disk_image(cluster: Cluster, ns: str, name: str) -> Path:
    pvc = get(cluster, "pvc", name, ns)
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    return Path(pv["spec"]["hostPath"]["path"]) / "disk.img"


@needs_importer
def test_blank_dv_end_to_end_is_a_sparse_disk(cluster: Cluster, ns: str) -> None:
    apply(cluster, data_volume("empty", ns, {"blank": {}}))
    wait(cluster, "dv/empty", ns, ".status.phase", "Succeeded", "120s")
    dv = get(cluster, "dv", "empty", ns)
    assert dv["status"]["progress"] == "100.0%"
    assert condition(dv, "Ready")["status"] == "True"
    image = disk_image(cluster, ns, "empty")
    st = os.stat(image)
    # The usable size of the 1138166334-byte volume: the overhead taken back off, rounded down to 1 MiB.
    assert GI - 64 * (1 << 20) <= st.st_size <= GI
    assert st.st_size % (1 << 20) == 0
    assert st.st_blocks * 512 < 16 * (1 << 20)  # sparse


@needs_importer
def test_http_dv_end_to_end_has_the_exact_bytes(cluster: Cluster, ns: str, image_corpus: Corpus,
                                               nginx_factory: NginxFactory) -> None:
    image_corpus.path("qcow2")
    server = nginx_factory(image_corpus.root)
    url = server.url(image_corpus.entry("qcow2").filename)
    apply(cluster, data_volume("web", ns, {"http": {"url": url}}, "256Mi"))
    wait(cluster, "dv/web", ns, ".status.phase", "Succeeded", "180s")
    image = disk_image(cluster, ns, "web")
    digest = hashlib.sha256()
    with open(image, "rb") as f:
        remaining = image_corpus.virtual_size
        while remaining:
            chunk = f.read(min(remaining, 1 << 20))
            assert chunk
            digest.update(chunk)
            remaining -= len(chunk)
    assert digest.hexdigest() == image_corpus.sha256_raw
    assert ("Normal", "ImportSucceeded", "Successfully imported into PVC web") in events(cluster, ns, "web")


@needs_importer
def test_blank_1gi_dv_gives_exactly_1gi(cluster: Cluster, ns: str) -> None:
    apply(cluster, data_volume("exact", ns, {"blank": {}}))
    wait(cluster, "dv/exact", ns, ".status.phase", "Succeeded", "120s")
    assert os.stat(disk_image(cluster, ns, "exact")).st_size == GI
