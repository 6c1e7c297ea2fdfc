"""The import controller against a real `pycdi up`: PVCs with import annotations made by hand with kubectl,
importer pods, scratch space on demand, progress, permanent and bounded transient failures."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import release_loop_devices
from tests.support.cluster import Cluster
from tests.support.fixtures import NginxFactory
from tests.support.images import Corpus, sha256_file

ANN = "cdi.kubevirt.io/storage."
PHASE = f"{ANN}pod.phase"
WAIT = "180s"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Short crash back-off, so the retry tests see several restarts quickly.
    c = Cluster(Path(tmp_path_factory.mktemp("pycdi")), extra_env={"PYCDI_BACKOFF_BASE_SECONDS": "0.2"})
    c.start()
    try:
        yield c
    finally:
        c.stop()
        release_loop_devices(c.data_dir)


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"imp-{secrets.token_hex(4)}"
    cluster.kubectl("create", "namespace", name)
    return name


def _escape(key: str) -> str:
    return key.replace(".", "\\.").replace("/", "\\/")


def make_pvc(cluster: Cluster, ns: str, name: str, annotations: dict[str, str], size: str = "100Mi",
             volume_mode: str = "Filesystem") -> None:
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": name, "namespace": ns, "annotations": annotations},
           "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": volume_mode,
                    "resources": {"requests": {"storage": size}}}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pvc))


def wait_annotation(cluster: Cluster, ns: str, name: str, key: str, value: str, timeout: str = WAIT) -> None:
    cluster.kubectl("wait", "-n", ns, f"pvc/{name}", f"--for=jsonpath={{.metadata.annotations.{_escape(key)}}}={value}",
                    f"--timeout={timeout}")


def wait_gone(cluster: Cluster, ns: str, kind: str, name: str) -> None:
    cluster.kubectl("wait", "-n", ns, f"{kind}/{name}", "--for=delete", f"--timeout={WAIT}")


def pvc_annotations(cluster: Cluster, ns: str, name: str) -> dict[str, str]:
    pvc: dict[str, Any] = cluster.kubectl_json("get", "-n", ns, "pvc", name, "-o", "json")
    return dict(pvc["metadata"].get("annotations") or {})


def volume_path(cluster: Cluster, ns: str, name: str) -> Path:
    pvc = cluster.kubectl_json("get", "-n", ns, "pvc", name, "-o", "json")
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"], "-o", "json")
    return Path(pv["spec"]["hostPath"]["path"])


def events(cluster: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl_json("get", "events", "-n", ns, "--field-selector",
                                  f"involvedObject.name={name},involvedObject.kind=PersistentVolumeClaim", "-o", "json")
    return list(listed["items"])


def http_annotations(url: str, **extra: str) -> dict[str, str]:
    return {f"{ANN}import.source": "http", f"{ANN}import.endpoint": url, f"{ANN}contentType": "kubevirt", **extra}


def test_blank_pvc_gets_a_sparse_disk_and_the_pod_goes(cluster: Cluster, ns: str) -> None:
    make_pvc(cluster, ns, "blank", {f"{ANN}import.source": "none"})
    wait_annotation(cluster, ns, "blank", PHASE, "Succeeded")
    ann = pvc_annotations(cluster, ns, "blank")
    assert ann[f"{ANN}import.importPodName"] == "importer-blank"
    assert ann[f"{ANN}populator.progress"] == "100.0%"
    assert ann[f"{ANN}condition.running"] == "false"
    assert ann[f"{ANN}condition.running.reason"] == "Completed"
    assert ann[f"{ANN}pod.restarts"] == "0"
    assert f"{ANN}import.fatalError" not in ann
    pvc = cluster.kubectl_json("get", "-n", ns, "pvc", "blank", "-o", "json")
    assert pvc["metadata"]["labels"]["app"] == "containerized-data-importer"
    wait_gone(cluster, ns, "pod", "importer-blank")
    disk = volume_path(cluster, ns, "blank") / "disk.img"
    assert disk.stat().st_size == 94 << 20  # 100Mi less the 6% filesystem overhead, rounded down to 1 MiB
    assert disk.stat().st_blocks * 512 <= 1 << 20  # sparse: at most a header block is allocated
    assert any(e["reason"] == "ImportSucceeded" for e in events(cluster, ns, "blank"))


def test_importer_pod_shape(cluster: Cluster, ns: str, nginx_factory: NginxFactory, image_corpus: Corpus) -> None:
    """While it runs (nginx answers slowly): owned by the PVC, OnFailure, upstream's env, /data mounted."""
    root = image_corpus.path("raw.gz").parent
    web = nginx_factory(root, delay=30.0)
    cluster.kubectl("create", "secret", "generic", "creds", "-n", ns, "--from-literal=accessKeyId=u",
                    "--from-literal=secretKey=p")
    make_pvc(cluster, ns, "shape", http_annotations(web.url(image_corpus.entry("raw.gz").filename), **{
        f"{ANN}import.secretName": "creds", f"{ANN}import.extraHeaders.0": "X-One: 1",
        f"{ANN}pod.priorityclassname": "", f"{ANN}preallocation.requested": "true"}))
    wait_annotation(cluster, ns, "shape", f"{ANN}condition.running", "true")
    pod = cluster.kubectl_json("get", "-n", ns, "pod", "importer-shape", "-o", "json")
    pvc = cluster.kubectl_json("get", "-n", ns, "pvc", "shape", "-o", "json")
    owner = pod["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == \
        ("PersistentVolumeClaim", "shape", pvc["metadata"]["uid"], True)
    assert pod["metadata"]["labels"]["app"] == "containerized-data-importer"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "OnFailure"
    container = spec["containers"][0]
    assert container["command"] == ["pycdi", "importer"]
    assert container["image"].startswith("quay.io/pycdi/pycdi-worker")
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["IMPORTER_SOURCE"] == "http"
    assert env["IMPORTER_IMAGE_SIZE"] == "100Mi"
    assert env["OWNER_UID"] == pvc["metadata"]["uid"]
    assert env["FILESYSTEM_OVERHEAD"] == "0.06"
    assert env["PREALLOCATION"] == "true"
    assert env["IMPORTER_EXTRA_HEADER_0"] == "X-One: 1"
    assert env["IMPORTER_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "creds", "key": "accessKeyId"}}
    assert container["volumeMounts"] == [{"name": "cdi-data-vol", "mountPath": "/data"}]
    assert container["resources"]["limits"] == {"cpu": "750m", "memory": "600M"}
    assert [v["name"] for v in spec["volumes"]] == ["cdi-data-vol"]
    # Deleting the claim mid-import stops the worker.
    cluster.kubectl("delete", "-n", ns, "pvc", "shape", "--wait=false")
    wait_gone(cluster, ns, "pod", "importer-shape")
    wait_gone(cluster, ns, "pvc", "shape")


@pytest.mark.parametrize(("name", "ranges"), [("raw.gz", True), ("qcow2", True)])
def test_http_import_streams_without_scratch(cluster: Cluster, ns: str, nginx_factory: NginxFactory,
                                             image_corpus: Corpus, name: str, ranges: bool) -> None:
    path = image_corpus.path(name)
    web = nginx_factory(path.parent, ranges=ranges)
    pvc = name.replace(".", "-")
    make_pvc(cluster, ns, pvc, http_annotations(web.url(path.name)))
    wait_annotation(cluster, ns, pvc, PHASE, "Succeeded")
    ann = pvc_annotations(cluster, ns, pvc)
    assert ann[f"{ANN}populator.progress"] == "100.0%"
    assert ann.get(f"{ANN}import.requiresScratch") is None
    assert ann[f"{ANN}condition.running.message"].startswith("Import Complete")
    disk = volume_path(cluster, ns, pvc) / "disk.img"
    assert sha256_file(disk, image_corpus.virtual_size) == image_corpus.expected_sha256(name)
    wait_gone(cluster, ns, "pod", f"importer-{pvc}")
    scratch = cluster.kubectl("get", "-n", ns, "pvc", f"{pvc}-scratch", check=False)
    assert scratch.returncode != 0


def test_qcow2_without_ranges_gets_scratch_space(cluster: Cluster, ns: str, nginx_factory: NginxFactory,
                                                 image_corpus: Corpus) -> None:
    path = image_corpus.path("qcow2")
    web = nginx_factory(path.parent, ranges=False)
    make_pvc(cluster, ns, "noranges", http_annotations(web.url(path.name)))
    wait_annotation(cluster, ns, "noranges", PHASE, "Succeeded")
    ann = pvc_annotations(cluster, ns, "noranges")
    assert ann[f"{ANN}import.requiresScratch"] == "true"
    assert f"{ANN}condition.bound.reason" not in ann  # "CreatingScratchSpace" is gone once the pod ran
    disk = volume_path(cluster, ns, "noranges") / "disk.img"
    assert sha256_file(disk, image_corpus.virtual_size) == image_corpus.sha256_raw
    wait_gone(cluster, ns, "pvc", "noranges-scratch")
    wait_gone(cluster, ns, "pod", "importer-noranges")


def test_block_volume_gets_the_raw_bytes(cluster: Cluster, ns: str, nginx_factory: NginxFactory,
                                         image_corpus: Corpus) -> None:
    path = image_corpus.path("qcow2")
    web = nginx_factory(path.parent)
    make_pvc(cluster, ns, "blk", http_annotations(web.url(path.name)), size="64Mi", volume_mode="Block")
    wait_annotation(cluster, ns, "blk", PHASE, "Succeeded")
    pod_env = pvc_annotations(cluster, ns, "blk")
    assert pod_env[f"{ANN}populator.progress"] == "100.0%"
    assert sha256_file(volume_path(cluster, ns, "blk"), image_corpus.virtual_size) == image_corpus.sha256_raw


def test_not_found_is_a_fatal_error_at_once(cluster: Cluster, ns: str, nginx_factory: NginxFactory,
                                            image_corpus: Corpus) -> None:
    web = nginx_factory(image_corpus.path("raw").parent)
    make_pvc(cluster, ns, "missing", http_annotations(web.url("no-such-image.img")))
    wait_annotation(cluster, ns, "missing", f"{ANN}import.fatalError", "true")
    ann = pvc_annotations(cluster, ns, "missing")
    assert ann[PHASE] == "Failed"
    assert ann[f"{ANN}condition.running"] == "false"
    message = ann[f"{ANN}condition.running.message"]
    assert message.startswith("Unable to process data:") and "404" in message
    assert ann[f"{ANN}condition.running.reason"] == "Error"
    wait_gone(cluster, ns, "pod", "importer-missing")
    failed = [e for e in events(cluster, ns, "missing") if e["reason"] == "ErrImportFailed"]
    assert failed and "404" in failed[0]["message"]


def test_flaky_server_recovers_with_restarts_counted(cluster: Cluster, ns: str, nginx_factory: NginxFactory,
                                                     image_corpus: Corpus) -> None:
    path = image_corpus.path("raw.gz")
    web = nginx_factory(path.parent)
    url = web.flaky_url(path.name, failures=2)
    make_pvc(cluster, ns, "flaky", http_annotations(url))
    wait_annotation(cluster, ns, "flaky", PHASE, "Succeeded")
    ann = pvc_annotations(cluster, ns, "flaky")
    assert ann[f"{ANN}pod.restarts"] == "2"
    assert ann["cdi.kubevirt.io/storage.import.retryCount"] == "2"
    assert f"{ANN}import.fatalError" not in ann
    disk = volume_path(cluster, ns, "flaky") / "disk.img"
    assert sha256_file(disk, image_corpus.virtual_size) == image_corpus.sha256_raw
    failed = [e for e in events(cluster, ns, "flaky") if e["reason"] == "ErrImportFailed"]
    assert failed and "503" in failed[0]["message"]


def test_transient_failures_are_bounded(cluster: Cluster, ns: str, nginx_factory: NginxFactory,
                                        image_corpus: Corpus) -> None:
    path = image_corpus.path("raw.gz")
    web = nginx_factory(path.parent)
    url = web.flaky_url(path.name, failures=100)
    make_pvc(cluster, ns, "down", http_annotations(url))
    wait_annotation(cluster, ns, "down", f"{ANN}import.fatalError", "true")
    ann = pvc_annotations(cluster, ns, "down")
    assert ann["cdi.kubevirt.io/storage.import.retryCount"] == "5"
    assert ann[PHASE] == "Failed"
    assert "503" in ann[f"{ANN}condition.running.message"]
    assert ann[f"{ANN}pod.restarts"] in ("4", "5")  # five runs (a sixth may start before the pod is deleted)
    wait_gone(cluster, ns, "pod", "importer-down")
    # Every run that reached the server made one request (a run can also fail before reaching it under load).
    assert web.flaky_hits(url) <= 6
