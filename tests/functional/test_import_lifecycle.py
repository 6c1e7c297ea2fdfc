"""Acceptance (issue 4 §4): blank disks (Filesystem usable size, Block), preallocation (per DataVolume and from
CDIConfig), WaitForFirstConsumer classes, the seed's import DataVolumes, deleting a DataVolume mid-import, and the
scratch claim of an import from a server without ranges, with the real kubectl against `pycdi up`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from pycdi.api.sizes import usable_space
from tests.support.cluster import Cluster
from tests.support.fixtures import NginxFactory
from tests.support.images import Corpus
from tests.support.imports import (
    MiB,
    allocated,
    apply_yaml,
    block_backing,
    claim_bytes,
    data_volume,
    describe_dv,
    sha256_prefix,
    volume_path,
    wait_dv_phase,
    watch_dvs,
)
from tests.support.seeds import seed_documents
from tests.support.storage import wait_event, wait_until

GI = 1 << 30
OVERHEAD = 0.06
ANN = "cdi.kubevirt.io/storage."
PREALLOCATION_APPLIED = f"{ANN}preallocation"
IMMEDIATE = f"{ANN}bind.immediate.requested"
HPP = "kubevirt.io/hostpath-provisioner"
WORKER = "quay.io/pycdi/pycdi-worker:latest"
Obj = dict[str, Any]


def new_ns(cluster: Cluster, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    return name


def pvc_annotations(cluster: Cluster, ns: str, name: str) -> dict[str, str]:
    pvc = cluster.kubectl_json("get", "pvc", name, "-n", ns)
    return dict(pvc["metadata"].get("annotations") or {})


def disk(cluster: Cluster, ns: str, name: str) -> Any:
    return volume_path(cluster, ns, name) / "disk.img"


def storage_class(cluster: Cluster, name: str, binding: str) -> None:
    apply_yaml(cluster, "default", {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                    "metadata": {"name": name}, "provisioner": HPP, "volumeBindingMode": binding})
    cluster.kubectl("wait", "--for=jsonpath={.status.provisioner}=" + HPP, f"storageprofile/{name}",
                    "--timeout=60s")


# ---- blank disks and preallocation, applied together -------------------------------------------------------


@dataclass
class Batch:
    cluster: Cluster
    ns: str
    corpus: Corpus
    phases: dict[str, str]


@pytest.fixture(scope="module")
def batch(cluster: Cluster, image_corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    from tests.support.nginx import nginx_server

    image_corpus.path("raw.gz")
    image_corpus.path("qcow2")
    ns = new_ns(cluster, "blank")
    with nginx_server(tmp_path_factory.mktemp("nginx-prealloc"), image_corpus.root) as web:
        gz, qcow2 = web.url(image_corpus.entry("raw.gz").filename), web.url(image_corpus.entry("qcow2").filename)
        dvs = [
            # The `pvc` API is not inflated by the overhead: disk.img is the usable part of 1Gi.
            data_volume("blank-fs", {"blank": {}}, "1Gi", api="pvc"),
            data_volume("blank-block", {"blank": {}}, "1Gi", mode="Block"),
            data_volume("blank-fs-prealloc", {"blank": {}}, "64Mi", preallocation=True),
            data_volume("blank-block-prealloc", {"blank": {}}, "64Mi", mode="Block", preallocation=True),
            data_volume("http-prealloc", {"http": {"url": gz}}, "100Mi", preallocation=True),
            data_volume("http-sparse", {"http": {"url": gz}}, "100Mi", preallocation=False),
            data_volume("qcow2-fs-prealloc", {"http": {"url": qcow2}}, "100Mi", preallocation=True),
            data_volume("qcow2-block-prealloc", {"http": {"url": qcow2}}, "100Mi", mode="Block", preallocation=True),
            data_volume("gz-block-prealloc", {"http": {"url": gz}}, "100Mi", mode="Block", preallocation=True),
        ]
        apply_yaml(cluster, ns, *dvs)
        phases = watch_dvs(cluster, ns, [d["metadata"]["name"] for d in dvs], 300)
        yield Batch(cluster, ns, image_corpus, phases)


def ok(batch: Batch, name: str) -> None:
    assert batch.phases[name] == "Succeeded", describe_dv(batch.cluster, batch.ns, name)


def test_blank_filesystem_disk_is_the_usable_size_and_sparse(batch: Batch) -> None:
    ok(batch, "blank-fs")
    image = disk(batch.cluster, batch.ns, "blank-fs")
    claim = claim_bytes(batch.cluster, batch.ns, "blank-fs")
    assert claim == GI
    assert image.stat().st_size == usable_space(OVERHEAD, GI) == 966 * MiB
    assert allocated(image) < MiB
    assert PREALLOCATION_APPLIED not in pvc_annotations(batch.cluster, batch.ns, "blank-fs")


def test_blank_block_volume_is_the_empty_device(batch: Batch) -> None:
    ok(batch, "blank-block")
    cluster, ns = batch.cluster, batch.ns
    assert claim_bytes(cluster, ns, "blank-block") == GI  # Block claims carry no filesystem overhead
    device = volume_path(cluster, ns, "blank-block")
    with open(device, "rb") as f:
        assert f.seek(0, 2) == GI
    assert allocated(block_backing(cluster, ns, "blank-block")) < MiB  # nothing written


def running_message(cluster: Cluster, ns: str, name: str) -> str:
    dv = cluster.kubectl_json("get", "dv", name, "-n", ns)
    return str(next(c for c in dv["status"]["conditions"] if c["type"] == "Running").get("message", ""))


def check_preallocated(batch: Batch, name: str, path: Any, size: int) -> None:
    """Every byte of `size` allocated, and the claim says preallocation was asked for and applied."""
    ok(batch, name)
    ann = pvc_annotations(batch.cluster, batch.ns, name)
    assert ann[f"{ANN}preallocation.requested"] == "true"
    assert ann.get(PREALLOCATION_APPLIED) == "true", f"{name}: {ann}"
    assert "Preallocation applied" in running_message(batch.cluster, batch.ns, name)
    assert allocated(path) >= size, f"{name}: {allocated(path)} of {size} bytes allocated"


def test_preallocated_blank_filesystem_disk(batch: Batch) -> None:
    image = disk(batch.cluster, batch.ns, "blank-fs-prealloc")
    assert image.stat().st_size == 64 * MiB
    check_preallocated(batch, "blank-fs-prealloc", image, 64 * MiB)


def test_preallocated_blank_block_volume(batch: Batch) -> None:
    check_preallocated(batch, "blank-block-prealloc", block_backing(batch.cluster, batch.ns, "blank-block-prealloc"),
                       64 * MiB)


def check_imported_preallocation(batch: Batch, name: str, mode: str) -> None:
    cluster, ns, corpus = batch.cluster, batch.ns, batch.corpus
    ok(batch, name)
    if mode == "Block":
        assert sha256_prefix(volume_path(cluster, ns, name), corpus.virtual_size) == corpus.sha256_raw
        check_preallocated(batch, name, block_backing(cluster, ns, name), 100 * MiB)
        return
    image = disk(cluster, ns, name)
    assert image.stat().st_size == usable_space(OVERHEAD, claim_bytes(cluster, ns, name))
    assert sha256_prefix(image, corpus.virtual_size) == corpus.sha256_raw
    check_preallocated(batch, name, image, image.stat().st_size)


def test_preallocated_qcow2_import_into_filesystem(batch: Batch) -> None:
    check_imported_preallocation(batch, "qcow2-fs-prealloc", "Filesystem")


def test_preallocated_streamed_import_into_filesystem(batch: Batch) -> None:
    check_imported_preallocation(batch, "http-prealloc", "Filesystem")


def test_preallocated_qcow2_import_into_block(batch: Batch) -> None:
    check_imported_preallocation(batch, "qcow2-block-prealloc", "Block")


def test_preallocated_streamed_import_into_block(batch: Batch) -> None:
    check_imported_preallocation(batch, "gz-block-prealloc", "Block")


def test_without_preallocation_only_the_data_is_allocated(batch: Batch) -> None:
    cluster, ns, corpus = batch.cluster, batch.ns, batch.corpus
    ok(batch, "http-sparse")
    image = disk(cluster, ns, "http-sparse")
    assert sha256_prefix(image, corpus.virtual_size) == corpus.sha256_raw
    assert allocated(image) <= allocated(corpus.path("raw")) + 2 * MiB
    ann = pvc_annotations(cluster, ns, "http-sparse")
    assert ann[f"{ANN}preallocation.requested"] == "false" and PREALLOCATION_APPLIED not in ann
    assert running_message(cluster, ns, "http-sparse") == "Import Complete"


def test_cdiconfig_preallocation_is_the_default(cluster: Cluster) -> None:
    ns = new_ns(cluster, "prealloc")
    cluster.kubectl("patch", "cdiconfig", "config", "--type=merge", "-p", '{"spec": {"preallocation": true}}')
    try:
        cluster.kubectl("wait", "cdiconfig/config", "--for=jsonpath={.status.preallocation}=true", "--timeout=60s")
        apply_yaml(cluster, ns, data_volume("inherits", {"blank": {}}, "32Mi"),
                   data_volume("opts-out", {"blank": {}}, "32Mi", preallocation=False))
        phases = watch_dvs(cluster, ns, ["inherits", "opts-out"], 180)
    finally:
        cluster.kubectl("patch", "cdiconfig", "config", "--type=json", "-p",
                        '[{"op": "remove", "path": "/spec/preallocation"}]')
    for name in ("inherits", "opts-out"):
        assert phases[name] == "Succeeded", describe_dv(cluster, ns, name)
    inherits, opts_out = disk(cluster, ns, "inherits"), disk(cluster, ns, "opts-out")
    assert allocated(inherits) >= inherits.stat().st_size == 32 * MiB
    assert pvc_annotations(cluster, ns, "inherits")[f"{ANN}preallocation.requested"] == "true"
    assert pvc_annotations(cluster, ns, "inherits").get(PREALLOCATION_APPLIED) == "true"
    assert allocated(opts_out) < MiB  # the DataVolume's own `preallocation: false` wins over CDIConfig
    assert PREALLOCATION_APPLIED not in pvc_annotations(cluster, ns, "opts-out")


# ---- WaitForFirstConsumer --------------------------------------------------------------------------------


def consumer_pod(name: str, claim: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "c", "image": WORKER, "command": ["true"],
                                     "volumeMounts": [{"name": "d", "mountPath": "/disk"}]}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]}}


def test_wait_for_first_consumer_imports_once_a_pod_uses_the_claim(cluster: Cluster, image_corpus: Corpus,
                                                                   nginx_factory: NginxFactory) -> None:
    sc = f"wffc-{uuid.uuid4().hex[:6]}"
    storage_class(cluster, sc, "WaitForFirstConsumer")
    ns = new_ns(cluster, "wffc")
    image_corpus.path("qcow2")
    web = nginx_factory(image_corpus.root)
    url = web.url(image_corpus.entry("qcow2").filename)
    apply_yaml(cluster, ns, data_volume("late", {"http": {"url": url}}, "100Mi", storage_class=sc),
               data_volume("now", {"http": {"url": url}}, "100Mi", storage_class=sc,
                           annotations={IMMEDIATE: "true"}))
    # Asked to bind at once: the importer pod is the claim's first consumer and the import runs now.
    wait_dv_phase(cluster, ns, "now", "Succeeded")
    assert sha256_prefix(disk(cluster, ns, "now"), image_corpus.virtual_size) == image_corpus.sha256_raw
    # The other waits for a consumer: no importer pod, the claim unbound, the phase says why.
    wait_dv_phase(cluster, ns, "late", "WaitForFirstConsumer")
    assert cluster.kubectl_json("get", "pvc", "late", "-n", ns)["status"]["phase"] == "Pending"
    assert cluster.kubectl("get", "pod", "importer-late", "-n", ns, check=False).returncode != 0
    apply_yaml(cluster, ns, consumer_pod("vm", "late"))
    wait_dv_phase(cluster, ns, "late", "Succeeded")
    assert sha256_prefix(disk(cluster, ns, "late"), image_corpus.virtual_size) == image_corpus.sha256_raw
    pvc = cluster.kubectl_json("get", "pvc", "late", "-n", ns)
    assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]


def test_wait_for_first_consumer_is_not_honoured_with_the_gate_off(cluster: Cluster, image_corpus: Corpus,
                                                                  nginx_factory: NginxFactory) -> None:
    """CDIConfig lists feature gates without HonorWaitForFirstConsumer: as upstream, the importer pod is the claim's
    first consumer and the import runs at once; the phase is never WaitForFirstConsumer."""
    sc = f"wffc-{uuid.uuid4().hex[:6]}"
    storage_class(cluster, sc, "WaitForFirstConsumer")
    ns = new_ns(cluster, "gate")
    image_corpus.path("raw.xz")
    web = nginx_factory(image_corpus.root)
    cluster.kubectl("patch", "cdiconfig", "config", "--type=merge", "-p", '{"spec": {"featureGates": []}}')
    try:
        apply_yaml(cluster, ns, data_volume("eager", {"http": {"url": web.url(image_corpus.entry("raw.xz").filename)}},
                                           "100Mi", storage_class=sc))
        history: list[tuple[str, str]] = []
        phase = watch_dvs(cluster, ns, ["eager"], 180, history)["eager"]
    finally:
        cluster.kubectl("patch", "cdiconfig", "config", "--type=json", "-p",
                        '[{"op": "remove", "path": "/spec/featureGates"}]')
    assert phase == "Succeeded", describe_dv(cluster, ns, "eager")
    assert ("eager", "WaitForFirstConsumer") not in history, history
    assert sha256_prefix(disk(cluster, ns, "eager"), image_corpus.virtual_size) == image_corpus.sha256_raw
    pvc = cluster.kubectl_json("get", "pvc", "eager", "-n", ns)
    assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]  # bound for its first consumer


# ---- the seed's DataVolumes ------------------------------------------------------------------------------


def seed_dvs(*sources: str) -> list[Obj]:
    """The seed documents' DataVolumes whose source is one of `sources`, one per name."""
    found: dict[str, Obj] = {}
    for doc in seed_documents():
        obj = doc.obj
        if obj and obj.get("kind") == "DataVolume" and next(iter(obj["spec"]["source"])) in sources:
            found.setdefault(obj["metadata"]["name"], obj)
    return list(found.values())


SEED_HTTP = seed_dvs("http")


@pytest.mark.skipif(not SEED_HTTP, reason="no seed documents on this machine")
def test_seed_http_datavolumes_bind_their_class_and_retry_an_unreachable_url(cluster: Cluster) -> None:
    """Their URLs are on the internet, which this machine cannot reach: the claim is made and bound in the class
    they name, and the import fails as a transient error that is retried (not a crash, not failed at once)."""
    for dv in SEED_HTTP:
        claim = dv["spec"].get("pvc") or dv["spec"]["storage"]
        cls = claim.get("storageClassName")
        if cls and cluster.kubectl("get", "storageclass", cls, check=False).returncode != 0:
            storage_class(cluster, cls, "Immediate")
        ns = dv["metadata"].get("namespace") or new_ns(cluster, "seed")
        text = yaml.safe_dump(dv, sort_keys=False)  # the seed's manifest, unchanged
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=text)
        name = dv["metadata"]["name"]
        cluster.kubectl("wait", "-n", ns, f"pvc/{name}", "--for=jsonpath={.status.phase}=Bound", "--timeout=60s")
        pvc = cluster.kubectl_json("get", "pvc", name, "-n", ns)
        for key in ("storageClassName", "accessModes", "volumeMode"):
            if key in claim:
                assert pvc["spec"][key] == claim[key], (key, pvc["spec"])
        assert claim_bytes(cluster, ns, name) >= GI
        # The run fails on the unreachable host, says so, and is retried: not failed at once, not a crash.
        host = dv["spec"]["source"]["http"]["url"].split("/")[2].split(":")[0]
        event = wait_event(cluster, ns, name, "ErrImportFailed", contains=host, timeout=120)
        assert event["type"] == "Warning" and "Traceback" not in event["message"], event["message"]
        restarted = wait_until(cluster, "dv", name, ns, lambda d: (d.get("status") or {}).get("restartCount", 0) >= 1,
                               timeout=120)
        assert restarted["status"]["phase"] in ("ImportScheduled", "ImportInProgress"), \
            describe_dv(cluster, ns, name)
        cluster.kubectl("delete", "dv", name, "-n", ns, "--wait=false")


SEED_BLANK = seed_dvs("blank")


@pytest.mark.skipif(not SEED_BLANK, reason="no seed documents on this machine")
def test_seed_blank_datavolume_succeeds(cluster: Cluster) -> None:
    ns = new_ns(cluster, "seed-blank")
    for dv in SEED_BLANK:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(dv, sort_keys=False))
    for dv in SEED_BLANK:
        name = dv["metadata"]["name"]
        wait_dv_phase(cluster, ns, name, "Succeeded")
        image = disk(cluster, ns, name)
        assert image.stat().st_size == usable_space(OVERHEAD, claim_bytes(cluster, ns, name))
        assert allocated(image) < MiB


# ---- deletion mid-import and scratch space ---------------------------------------------------------------


def test_scratch_claim_lives_only_during_a_no_range_import(cluster: Cluster, image_corpus: Corpus,
                                                          nginx_factory: NginxFactory) -> None:
    ns = new_ns(cluster, "scratch")
    image_corpus.path("qcow2")
    web = nginx_factory(image_corpus.root, ranges=False, delay=2.0)  # slow enough to see the claim
    apply_yaml(cluster, ns, data_volume("slow", {"http": {"url": web.url(image_corpus.entry("qcow2").filename)}},
                                        "100Mi"))
    cluster.kubectl("wait", "-n", ns, "--for=create", "pvc/slow-scratch", "--timeout=120s")
    scratch = cluster.kubectl_json("get", "pvc", "slow-scratch", "-n", ns)
    owner = scratch["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Pod", "importer-slow")
    assert scratch["spec"]["volumeMode"] == "Filesystem"
    wait_dv_phase(cluster, ns, "slow", "Succeeded")
    cluster.kubectl("wait", "-n", ns, "--for=delete", "pvc/slow-scratch", "--timeout=60s")
    assert sha256_prefix(disk(cluster, ns, "slow"), image_corpus.virtual_size) == image_corpus.sha256_raw


def test_deleting_a_dv_mid_import_stops_the_worker_and_removes_everything(
        cluster: Cluster, image_corpus: Corpus, nginx_factory: NginxFactory) -> None:
    ns = new_ns(cluster, "delete")
    image_corpus.path("qcow2")
    web = nginx_factory(image_corpus.root, ranges=False, delay=12.0)
    apply_yaml(cluster, ns, data_volume("doomed", {"http": {"url": web.url(image_corpus.entry("qcow2").filename)}},
                                        "100Mi"))
    cluster.kubectl("wait", "-n", ns, "--for=create", "pvc/doomed-scratch", "--timeout=180s")
    cluster.kubectl("wait", "-n", ns, "pod/importer-doomed", "--for=jsonpath={.status.phase}=Running",
                    "--timeout=60s")
    volumes = {name: cluster.kubectl_json("get", "pvc", name, "-n", ns)["spec"].get("volumeName")
               for name in ("doomed", "doomed-scratch")}
    cluster.kubectl("delete", "dv", "doomed", "-n", ns, "--wait=false")
    for what in ("pod/importer-doomed", "pvc/doomed", "pvc/doomed-scratch", "dv/doomed"):
        cluster.kubectl("wait", "-n", ns, "--for=delete", what, "--timeout=60s")
    for pv in volumes.values():
        if pv:
            cluster.kubectl("wait", "--for=delete", f"pv/{pv}", "--timeout=60s")
    assert json.loads(cluster.kubectl("get", "pods,pvc", "-n", ns, "-o", "json").stdout)["items"] == []
