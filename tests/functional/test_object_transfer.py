"""ObjectTransfer against a real `pycdi up` through kubectl: the seed's three examples applied verbatim, the volume
moved (the same PV and the same bytes: nothing copied), each Pending cause and how it clears by itself, admission,
and a controller killed right after each write of a transfer that, restarted, still completes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycdi.controllers.transfer.crashhook import ENV as CRASH_ENV
from pycdi.controllers.transfer.crashhook import EXIT_CODE as CRASH_EXIT
from tests.conftest import release_loop_devices
from tests.support.cluster import Cluster
from tests.support.fixtures import NginxFactory
from tests.support.images import Corpus, sha256_file
from tests.support.nginx import nginx_server
from tests.support.storage import (
    apply,
    get,
    host_path,
    namespace,
    pvc,
    seed_object,
    storage_class,
    unique,
    wait_phase,
    wait_until,
)

Obj = dict[str, Any]
WORKER = "quay.io/pycdi/pycdi-worker:latest"
#: Where the seed's manifests fetch their image (images.demo.com is not reachable from here: see `seed_env`).
SEED_IMAGE = "images/cirros-0.5.1-x86_64-disk.img"
WEBHOOK = 'admission webhook "objecttransfer-validate.cdi.kubevirt.io" denied the request'
DEPRECATION = "Warning: ObjectTransfer feature is deprecated, and will be deleted soon"
ANN_TRANSFER = "cdi.kubevirt.io/objectTransferName"
#: The external-snapshotter's finalizer, and upstream CDI's spelling of it (which it checks for).
SNAPSHOT_PROTECTION = "snapshot.storage.kubernetes.io/pvc-as-source-protection"
SNAPSHOT_PROTECTION_UPSTREAM = "snapshot.storage.k8s.io/pvc-as-source-protection"
MARK_OFFSET = 1 << 20
#: What CDI's upload server does with an image, as a pod: qemu-img writes it into the claim's device. The embedded
#: node runs a container as a local process and tells it where each container path is on this machine in
#: PYCDI_PATH_MAP (pycdi's own workers read it); a shell has to look the device up there.
UPLOAD_SCRIPT = (
    'device=$(python3 -c \'import json, os; print(json.loads(os.environ["PYCDI_PATH_MAP"])["/dev/cdi-block-volume"])\')'
    ' && exec qemu-img convert -n -f qcow2 -O raw "$1" "$device"')
WAIT = 180.0


# ---- helpers ------------------------------------------------------------------------------------------------


def object_transfer(name: str, kind: str, ns: str, source: str, target_ns: str | None = None,
                    target_name: str | None = None, **source_fields: Any) -> Obj:
    target = {k: v for k, v in (("namespace", target_ns), ("name", target_name)) if v is not None}
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "ObjectTransfer", "metadata": {"name": name},
            "spec": {"source": {"kind": kind, "namespace": ns, "name": source, **source_fields}, "target": target}}


def create(cluster: Cluster, obj: Obj, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("create", "-f", "-", input=json.dumps(obj), check=check)


def condition(ot: Obj) -> Obj:
    return next(c for c in (ot.get("status") or {}).get("conditions") or [] if c["type"] == "Complete")


def wait_message(cluster: Cluster, name: str, message: str, timeout: float = 60.0) -> Obj:
    """Watch the transfer until its Complete condition says `message` (upstream puts the state there)."""
    def says(ot: Obj) -> bool:
        conds = [c for c in (ot.get("status") or {}).get("conditions") or [] if c["type"] == "Complete"]
        return bool(conds) and conds[0].get("message") == message
    return wait_until(cluster, "objecttransfer", name, "", says, timeout)


def wait_complete(cluster: Cluster, name: str, timeout: float = WAIT) -> Obj:
    """Complete, and its finalizer gone (the controller's last write)."""
    return wait_until(cluster, "objecttransfer", name, "",
                      lambda ot: (ot.get("status") or {}).get("phase") == "Complete"
                      and not ot["metadata"].get("finalizers"), timeout)


def absent(cluster: Cluster, kind: str, name: str, ns: str = "") -> bool:
    where = ["-n", ns] if ns else []
    result = cluster.kubectl("get", kind, name, *where, check=False)
    return result.returncode != 0 and "NotFound" in result.stderr


def ensure_namespace(cluster: Cluster, name: str) -> None:
    result = cluster.kubectl("create", "namespace", name, check=False)
    assert result.returncode == 0 or "AlreadyExists" in result.stderr, result.stderr


def digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def data_file(cluster: Cluster, ns: str, claim: str) -> Path:
    """The file holding a claim's bytes: a Block volume's backing file, a Filesystem volume's disk.img (or, in a
    plain claim, the file an application wrote: see `volume_snapshot`)."""
    path = host_path(cluster, ns, claim)
    if not path.is_dir():
        return path
    return path / "disk.img" if (path / "disk.img").exists() else path / "data.bin"


def mark(path: Path) -> bytes:
    """Write random bytes into the volume: an import (or a copy from the image) could not put them there."""
    marker = os.urandom(4096)
    with open(path, "r+b") as f:
        f.seek(MARK_OFFSET)
        f.write(marker)
    return marker


def marked(path: Path, marker: bytes) -> bool:
    with open(path, "rb") as f:
        f.seek(MARK_OFFSET)
        return f.read(len(marker)) == marker


def volume_snapshot(cluster: Cluster, ns: str, claim: str) -> Obj:
    """What must not change when the claim moves: its PV, the PV's path, the bytes, and a marker in them."""
    pv = get(cluster, "pv", get(cluster, "pvc", claim, ns)["spec"]["volumeName"])
    path = data_file(cluster, ns, claim)
    if not path.exists():  # a plain Filesystem claim: what an application would have written in it
        path.write_bytes(os.urandom(2 << 20))
    marker = mark(path)
    return {"pv": pv["metadata"]["name"], "pv_uid": pv["metadata"]["uid"], "hostPath": pv["spec"]["hostPath"],
            "reclaim": pv["spec"]["persistentVolumeReclaimPolicy"], "file": path, "inode": path.stat().st_ino,
            "sha256": digest(path), "marker": marker}


def assert_moved(cluster: Cluster, before: Obj, ns: str, claim: str) -> Obj:
    """The claim in its new place holds the very volume it held before: same PV object, same path, same bytes."""
    moved = get(cluster, "pvc", claim, ns)
    assert moved["status"]["phase"] == "Bound"
    assert moved["spec"]["volumeName"] == before["pv"]
    pv = get(cluster, "pv", before["pv"])
    assert pv["metadata"]["uid"] == before["pv_uid"]  # not a new PV of the same name
    assert pv["spec"]["hostPath"] == before["hostPath"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == before["reclaim"]  # restored after Retain
    ref = pv["spec"]["claimRef"]
    assert (ref["namespace"], ref["name"], ref["uid"]) == (ns, claim, moved["metadata"]["uid"])
    path = data_file(cluster, ns, claim)
    assert path == before["file"] and path.stat().st_ino == before["inode"]
    assert marked(path, before["marker"])
    assert digest(path) == before["sha256"]
    assert ANN_TRANSFER not in (moved["metadata"].get("annotations") or {})
    return moved


def assert_done(cluster: Cluster, name: str) -> Obj:
    ot = wait_complete(cluster, name)
    cond = condition(ot)
    assert (cond["status"], cond["message"]) == ("True", "Transfer complete")
    assert "reason" not in cond
    assert "data" not in ot["status"]
    return ot


def pvc_in(cluster: Cluster, ns: str, name: str = "src", size: str = "16Mi", **kw: Any) -> str:
    apply(cluster, pvc(name, size, **kw), namespace=ns)
    wait_phase(cluster, ns, name)
    return name


def blank_dv(cluster: Cluster, ns: str, name: str, size: str = "64Mi") -> None:
    create(cluster, {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                     "metadata": {"name": name, "namespace": ns},
                     "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": size}}}}})
    wait_phase(cluster, ns, name, "Succeeded", kind="dv")


def user_pod(name: str, claim: str) -> Obj:
    """A pod that uses the claim and never finishes (an image the embedded node does not run stays Pending)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "registry.example/vm:1"}],
                     "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]}}


# ---- the seed's environment ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_env(cluster: Cluster, image_corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    """What the seed's cluster had, here: the StorageClass `ceph-hdd-block` (Block, RWX: the embedded hostpath
    provisioner stands in for Ceph RBD), the namespace `test`, and images.demo.com reachable. That host is on
    the seed author's network; as an air-gapped cluster would, this one reaches it through CDIConfig's
    importProxy, an nginx here serving the cirros image's path (a qcow2 image from the corpus). The seed's
    manifests, with their URL, are applied unchanged."""
    root = tmp_path_factory.mktemp("images-demo-com")
    (root / "images").mkdir()
    shutil.copyfile(image_corpus.path("qcow2"), root / SEED_IMAGE)
    with nginx_server(tmp_path_factory.mktemp("nginx-proxy"), root) as web:
        apply(cluster, storage_class("ceph-hdd-block", reclaimPolicy="Delete", volumeBindingMode="Immediate"))
        ensure_namespace(cluster, "test")
        proxy = {"HTTPProxy": web.base_url, "noProxy": "127.0.0.1,localhost"}
        cluster.kubectl("patch", "cdiconfig", "config", "--type=merge", "-p",
                        json.dumps({"spec": {"importProxy": proxy}}))
        wait_until(cluster, "cdiconfig", "config", "",
                   lambda c: ((c.get("status") or {}).get("importProxy") or {}).get("HTTPProxy") == web.base_url)
        yield image_corpus


def apply_seed(cluster: Cluster, kind: str, name: str) -> subprocess.CompletedProcess[str]:
    """`kubectl apply` of the seed's manifest, exactly as the document has it."""
    return apply(cluster, seed_object(kind, name))


def import_seed_dv(cluster: Cluster, corpus: Corpus, name: str) -> Obj:
    apply_seed(cluster, "DataVolume", name)
    wait_until(cluster, "dv", name, "default", lambda dv: (dv.get("status") or {}).get("phase") == "Succeeded",
               WAIT)
    claim = get(cluster, "pvc", name, "default")
    assert claim["spec"]["volumeMode"] == "Block" and claim["spec"]["storageClassName"] == "ceph-hdd-block"
    assert sha256_file(data_file(cluster, "default", name), corpus.virtual_size) == corpus.sha256_raw
    return claim


def test_seed_example_1_moves_a_datavolume(cluster: Cluster, seed_env: Corpus) -> None:
    source_claim = import_seed_dv(cluster, seed_env, "img-cirros01")
    before = volume_snapshot(cluster, "default", "img-cirros01")
    out = apply_seed(cluster, "ObjectTransfer", "t1")
    assert out.stdout.strip() == "objecttransfer.cdi.kubevirt.io/t1 created"
    assert DEPRECATION in out.stderr
    ot = assert_done(cluster, "t1")
    # The seed's result: the DataVolume img-cirros01 moved from default to test.
    assert absent(cluster, "dv", "img-cirros01", "default")
    assert absent(cluster, "pvc", "img-cirros01", "default")
    dv = get(cluster, "dv", "img-cirros01", "test")
    assert dv["status"]["phase"] == "Succeeded"
    assert dv["spec"] == get_seed_spec("img-cirros01")
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/storage.prePopulated"] == "img-cirros01"
    moved = assert_moved(cluster, before, "test", "img-cirros01")
    assert moved["metadata"]["annotations"]["cdi.kubevirt.io/storage.populatedFor"] == "img-cirros01"
    assert moved["spec"] == {**source_claim["spec"]}  # the claim recreated from the saved one
    owner = moved["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o["uid"]) for o in owner] == [("DataVolume", "img-cirros01", dv["metadata"]["uid"])]
    # Adopted, not imported: no importer ever ran in `test`, and the child PVC transfer is gone.
    assert cluster.kubectl_json("get", "pods", "-n", "test")["items"] == []
    assert absent(cluster, "objecttransfer", f"pvc-transfer-{ot['metadata']['uid']}")
    assert cluster.kubectl("get", "ot", "t1").stdout.split("\n")[0].split() == ["NAME", "AGE", "PHASE"]


def get_seed_spec(name: str) -> Obj:
    spec: Obj = seed_object("DataVolume", name)["spec"]
    return spec


def test_seed_example_2_moves_an_uploaded_pvc(cluster: Cluster, seed_env: Corpus) -> None:
    # `virtctl image-upload pvc pvc-image-cirros01 --size 2Gi --access-mode=ReadWriteMany --volume-mode=block`:
    # a 2Gi RWX Block claim of the default class, the image written into it by a pod (qemu-img, as CDI's upload
    # server does), the pod finished.
    apply(cluster, pvc("pvc-image-cirros01", "2Gi", mode="Block", accessModes=["ReadWriteMany"]), namespace="default")
    wait_phase(cluster, "default", "pvc-image-cirros01")
    image = seed_env.path("qcow2")
    apply(cluster, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "upload-cirros01"},
                    "spec": {"restartPolicy": "Never", "containers": [{
                        "name": "upload", "image": WORKER,
                        "command": ["sh", "-c", UPLOAD_SCRIPT, "upload", str(image)],
                        "volumeDevices": [{"name": "disk", "devicePath": "/dev/cdi-block-volume"}]}],
                        "volumes": [{"name": "disk", "persistentVolumeClaim": {"claimName": "pvc-image-cirros01"}}]}},
          namespace="default")
    wait_phase(cluster, "default", "upload-cirros01", "Succeeded", kind="pod")
    path = data_file(cluster, "default", "pvc-image-cirros01")
    assert sha256_file(path, seed_env.virtual_size) == seed_env.sha256_raw
    before = volume_snapshot(cluster, "default", "pvc-image-cirros01")
    out = apply_seed(cluster, "ObjectTransfer", "t2")
    assert DEPRECATION in out.stderr
    assert_done(cluster, "t2")
    # A finished pod does not hold the claim; the claim is gone from default (no DataVolume recreates it).
    assert absent(cluster, "pvc", "pvc-image-cirros01", "default")
    moved = assert_moved(cluster, before, "test", "pvc-image-cirros01")
    assert moved["status"]["capacity"] == {"storage": "2Gi"} and moved["status"]["accessModes"] == ["ReadWriteMany"]


def test_seed_example_3_pvc_of_a_datavolume_is_recreated_at_home(cluster: Cluster, seed_env: Corpus) -> None:
    original = import_seed_dv(cluster, seed_env, "img-cirros03")
    before = volume_snapshot(cluster, "default", "img-cirros03")
    apply_seed(cluster, "ObjectTransfer", "t3")
    assert_done(cluster, "t3")
    moved = assert_moved(cluster, before, "test", "img-cirros03")
    assert "ownerReferences" not in moved["metadata"]  # the namespace changed: the DataVolume stays behind
    assert absent(cluster, "dv", "img-cirros03", "test")
    # The illusion the seed warns about: its DataVolume, still in default, made a new claim of the same name and
    # imported again; the creation time (and the volume) give it away.
    dv = wait_until(cluster, "dv", "img-cirros03", "default",
                    lambda d: (d.get("status") or {}).get("phase") == "Succeeded"
                    and get(cluster, "pvc", "img-cirros03", "default")["metadata"]["uid"]
                    != original["metadata"]["uid"], WAIT)
    again = get(cluster, "pvc", "img-cirros03", "default")
    assert again["metadata"]["creationTimestamp"] >= original["metadata"]["creationTimestamp"]
    assert again["status"]["phase"] == "Bound" and again["spec"]["volumeName"] != before["pv"]
    assert dv["status"]["progress"] == "100.0%"
    assert sha256_file(data_file(cluster, "default", "img-cirros03"), seed_env.virtual_size) == seed_env.sha256_raw
    listing = cluster.kubectl("get", "pvc", "-n", "test").stdout
    assert "img-cirros03" in listing and before["pv"] in listing


# ---- Pending, and how each cause clears by itself -------------------------------------------------------------


def test_no_source_until_the_claim_appears(cluster: Cluster) -> None:
    src, dst = namespace(cluster, "ot"), namespace(cluster, "ot")
    name = unique("ot")
    create(cluster, object_transfer(name, "PersistentVolumeClaim", src, "later", dst))
    pending = wait_message(cluster, name, "No source")
    assert pending["status"]["phase"] == "Pending" and condition(pending)["status"] == "False"
    assert pending["metadata"]["finalizers"] == ["cdi.kubevirt.io/objectTransfer"]
    apply(cluster, pvc("later"), namespace=src)  # it binds, and moves at once
    assert_done(cluster, name)
    assert get(cluster, "pvc", "later", dst)["status"]["phase"] == "Bound"


def test_not_bound_until_its_class_exists(cluster: Cluster) -> None:
    src, dst = namespace(cluster, "ot"), namespace(cluster, "ot")
    sc = unique("late-class")
    apply(cluster, pvc("src", storage_class=sc), namespace=src)
    name = unique("ot")
    create(cluster, object_transfer(name, "PersistentVolumeClaim", src, "src", dst, "renamed"))
    wait_message(cluster, name, "PVC not bound")
    apply(cluster, storage_class(sc))
    assert_done(cluster, name)
    moved = get(cluster, "pvc", "renamed", dst)
    assert moved["status"]["phase"] == "Bound" and moved["spec"]["storageClassName"] == sc


@pytest.mark.parametrize("finalizer", [SNAPSHOT_PROTECTION, SNAPSHOT_PROTECTION_UPSTREAM])
def test_protection_finalizer_holds_it_until_removed_by_hand(cluster: Cluster, finalizer: str) -> None:
    """A snapshot's protection left on the claim. (A cloning-protection finalizer added by hand does not stay:
    the embedded provisioner drops it at once from a claim no clone is copying, so the cloning-protection case
    runs against a bare API server in tests/unit/controllers/test_transfer.py.)"""
    src, dst = namespace(cluster, "ot"), namespace(cluster, "ot")
    pvc_in(cluster, src)
    cluster.kubectl("patch", "pvc", "src", "-n", src, "--type=json",
                    "-p", json.dumps([{"op": "add", "path": "/metadata/finalizers/-", "value": finalizer}]))
    before = volume_snapshot(cluster, src, "src")
    name = unique("ot")
    create(cluster, object_transfer(name, "PersistentVolumeClaim", src, "src", dst))
    pending = wait_message(cluster, name, f"PVC has finalizer: {finalizer}")
    assert pending["status"]["phase"] == "Pending"
    assert ANN_TRANSFER not in (get(cluster, "pvc", "src", src)["metadata"].get("annotations") or {})
    # The seed's way out: take the finalizer off the claim by hand.
    finalizers = get(cluster, "pvc", "src", src)["metadata"]["finalizers"]
    cluster.kubectl("patch", "pvc", "src", "-n", src, "--type=json", "-p", json.dumps(
        [{"op": "remove", "path": f"/metadata/finalizers/{finalizers.index(finalizer)}"}]))
    assert_done(cluster, name)
    assert_moved(cluster, before, dst, "src")


def test_pods_using_the_claim_hold_it_until_they_go(cluster: Cluster) -> None:
    src, dst = namespace(cluster, "ot"), namespace(cluster, "ot")
    pvc_in(cluster, src)
    apply(cluster, user_pod("vm", "src"), namespace=src)
    name = unique("ot")
    create(cluster, object_transfer(name, "PersistentVolumeClaim", src, "src", dst))
    wait_message(cluster, name, "Pods using PVC")
    cluster.kubectl("delete", "pod", "vm", "-n", src, "--grace-period=0", "--force", "--timeout=60s")
    assert_done(cluster, name)
    assert get(cluster, "pvc", "src", dst)["status"]["phase"] == "Bound"


def test_required_annotation_until_it_is_set(cluster: Cluster) -> None:
    src, dst = namespace(cluster, "ot"), namespace(cluster, "ot")
    pvc_in(cluster, src)
    cluster.kubectl("annotate", "pvc", "src", "-n", src, "example.com/approved=no")
    name = unique("ot")
    create(cluster, object_transfer(name, "PersistentVolumeClaim", src, "src", dst,
                                    requiredAnnotations={"example.com/approved": "yes"}))
    wait_message(cluster, name, "Required annotation missing")
    cluster.kubectl("annotate", "pvc", "src", "-n", src, "--overwrite", "example.com/approved=yes")
    assert_done(cluster, name)
    annotations = get(cluster, "pvc", "src", dst)["metadata"]["annotations"]
    assert annotations["example.com/approved"] == "yes"


def test_claimed_by_another_transfer_until_released(cluster: Cluster) -> None:
    src, dst = namespace(cluster, "ot"), namespace(cluster, "ot")
    pvc_in(cluster, src)
    cluster.kubectl("annotate", "pvc", "src", "-n", src, f"{ANN_TRANSFER}=another")
    name = unique("ot")
    create(cluster, object_transfer(name, "PersistentVolumeClaim", src, "src", dst))
    pending = wait_message(cluster, name, "Source in use by another transfer")
    assert condition(pending)["reason"] == "another"  # upstream's quirk: the detail goes into `reason`
    cluster.kubectl("annotate", "pvc", "src", "-n", src, f"{ANN_TRANSFER}-")
    assert_done(cluster, name)


def test_datavolume_not_populated_until_its_import_finishes(cluster: Cluster, nginx_factory: NginxFactory,
                                                           image_corpus: Corpus) -> None:
    src, dst = namespace(cluster, "ot"), namespace(cluster, "ot")
    raw = image_corpus.path("raw.gz")
    web = nginx_factory(raw.parent, delay=4.0)
    create(cluster, {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                     "metadata": {"name": "disk", "namespace": src},
                     "spec": {"source": {"http": {"url": web.url(raw.name)}},
                              "storage": {"resources": {"requests": {"storage": "128Mi"}}}}})
    name = unique("ot")
    create(cluster, object_transfer(name, "DataVolume", src, "disk", dst, "moved-disk"))
    wait_message(cluster, name, "Source not populated")
    wait_phase(cluster, src, "disk", "Succeeded", kind="dv")
    ot = assert_done(cluster, name)
    assert absent(cluster, "dv", "disk", src) and absent(cluster, "pvc", "disk", src)
    dv = get(cluster, "dv", "moved-disk", dst)
    assert dv["status"]["phase"] == "Succeeded"
    disk = data_file(cluster, dst, "moved-disk")
    assert sha256_file(disk, image_corpus.virtual_size) == image_corpus.sha256_raw
    assert absent(cluster, "objecttransfer", f"pvc-transfer-{ot['metadata']['uid']}")


def test_pods_using_the_datavolume_hold_it(cluster: Cluster) -> None:
    src, dst = namespace(cluster, "ot"), namespace(cluster, "ot")
    blank_dv(cluster, src, "disk")
    before = volume_snapshot(cluster, src, "disk")
    apply(cluster, user_pod("vm", "disk"), namespace=src)
    name = unique("ot")
    create(cluster, object_transfer(name, "DataVolume", src, "disk", dst))
    wait_message(cluster, name, "Pods using DataVolume PVC")
    assert get(cluster, "dv", "disk", src)["status"]["phase"] == "Succeeded"  # untouched while it waits
    cluster.kubectl("delete", "pod", "vm", "-n", src, "--grace-period=0", "--force", "--timeout=60s")
    assert_done(cluster, name)
    assert_moved(cluster, before, dst, "disk")
    assert get(cluster, "dv", "disk", dst)["status"]["phase"] == "Succeeded"


def test_deleting_a_pending_transfer_lets_it_go_and_leaves_the_source(cluster: Cluster) -> None:
    src, dst = namespace(cluster, "ot"), namespace(cluster, "ot")
    pvc_in(cluster, src)
    apply(cluster, user_pod("vm", "src"), namespace=src)
    name = unique("ot")
    create(cluster, object_transfer(name, "PersistentVolumeClaim", src, "src", dst))
    wait_message(cluster, name, "Pods using PVC")
    cluster.kubectl("delete", "objecttransfer", name, "--timeout=60s")
    claim = get(cluster, "pvc", "src", src)
    assert claim["status"]["phase"] == "Bound" and ANN_TRANSFER not in (claim["metadata"].get("annotations") or {})
    assert absent(cluster, "pvc", "src", dst)


# ---- admission ------------------------------------------------------------------------------------------------


def refused(cluster: Cluster, obj: Obj) -> str:
    result = create(cluster, obj, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr.strip()


def test_admission_refusals(cluster: Cluster) -> None:
    src = namespace(cluster, "ot")
    pvc_in(cluster, src, "taken")
    name = unique("ot")
    base = object_transfer(name, "PersistentVolumeClaim", src, "src")
    assert refused(cluster, base).endswith(f"{WEBHOOK}: Target namespace and/or target name must be supplied")
    assert refused(cluster, object_transfer(name, "ConfigMap", src, "cm", "default")).endswith(
        f'{WEBHOOK}: Unsupported kind "ConfigMap"')
    assert refused(cluster, object_transfer(name, "PersistentVolumeClaim", src, "src", "no-such-ns")).endswith(
        f'{WEBHOOK}: ObjectTransfer target namespace "no-such-ns" not found')
    message = refused(cluster, object_transfer(name, "PersistentVolumeClaim", src, "src", target_name="taken"))
    assert message.endswith(f'{WEBHOOK}: ObjectTransfer target "{src}/taken" already exists')
    status, body, _ = cluster.request("POST", "/apis/cdi.kubevirt.io/v1beta1/objecttransfers",
                                      object_transfer(name, "PersistentVolumeClaim", src, "src", target_name="taken"))
    assert (status, body["code"]) == (400, 400)  # upstream's toAdmissionResponseError
    blank_dv(cluster, src, "dv")
    assert refused(cluster, object_transfer(name, "DataVolume", src, "x", target_name="dv")).endswith(
        f'{WEBHOOK}: ObjectTransfer target "{src}/dv" already exists')
    # Admitted (waiting for a source that never comes), then its spec cannot change; its labels can.
    out = create(cluster, object_transfer(name, "PersistentVolumeClaim", src, "src", target_name="elsewhere"))
    assert DEPRECATION in out.stderr
    wait_message(cluster, name, "No source")
    result = cluster.kubectl("patch", "objecttransfer", name, "--type=merge",
                             "-p", json.dumps({"spec": {"target": {"name": "other"}}}), check=False)
    assert result.returncode != 0 and result.stderr.strip().endswith(f"{WEBHOOK}: ObjectTransfer spec is immutable")
    cluster.kubectl("label", "objecttransfer", name, "example.com/team=storage")
    cluster.kubectl("delete", "objecttransfer", name, "--timeout=60s")


# ---- a controller killed after each write of the sequence ---------------------------------------------------


@pytest.fixture(scope="module")
def crash_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Killed and restarted over and over: not the module's shared cluster."""
    c = Cluster(Path(tmp_path_factory.mktemp("crash"))).start()
    try:
        yield c
    finally:
        c.stop()
        release_loop_devices(c.data_dir)


def _crashed(cluster: Cluster) -> bool:
    assert cluster.process is not None
    code = cluster.process.wait(60)
    assert code == CRASH_EXIT, f"pycdi up exited with {code}:\n{cluster.log()}"
    cluster.process = None
    return True


def _crash_or_done(cluster: Cluster, name: str) -> bool:
    """While `pycdi up` lives: True once it died at a transfer write, False if the transfer is over instead."""
    assert cluster.process is not None
    while True:
        try:
            cluster.process.wait(0.2)  # waiting on the process itself: it dies at its next transfer write
            break
        except subprocess.TimeoutExpired:
            pass
        try:
            status, ot, _ = cluster.request("GET", f"/apis/cdi.kubevirt.io/v1beta1/objecttransfers/{name}")
        except OSError:
            continue  # it is dying
        if status == 200 and (ot.get("status") or {}).get("phase") == "Complete" \
                and not ot["metadata"].get("finalizers"):
            return False
    return _crashed(cluster)


def _run_once(cluster: Cluster, name: str) -> bool:
    """One life of `pycdi up` with the hook armed: True when the transfer controller wrote (and the process
    died right after), False when the transfer was already over and nothing was left to write."""
    try:
        cluster.start()
    except RuntimeError:
        return _crashed(cluster)  # the first write came before readiness (the usual case)
    return _crash_or_done(cluster, name)


def crash_through(cluster: Cluster, ot: Obj, invariant: Callable[[], None], limit: int = 80) -> list[str]:
    """Create the transfer in a `pycdi up` armed to exit right after one transfer write, and restart it (armed
    again) until the transfer needs no more writes, checking `invariant` while it is down after each crash.
    Returns the write that ended each life, in order (armed, the controller runs one worker: one write a life)."""
    name = ot["metadata"]["name"]
    assert cluster.log_path is not None
    log_start = cluster.log_path.stat().st_size
    cluster.stop()
    cluster.extra_env[CRASH_ENV] = "1"
    try:
        cluster.start()  # no transfer to write for yet
        create(cluster, ot, check=False)  # stored before the answer; the controller may die before kubectl reads it
        crashed = _crash_or_done(cluster, name)
        for _ in range(limit):
            if not crashed:
                break
            invariant()
            crashed = _run_once(cluster, name)
        else:
            raise AssertionError(f"transfer {name} still writing after {limit} restarts")
    finally:
        cluster.extra_env.pop(CRASH_ENV, None)
    cluster.stop()
    cluster.start()  # a normal life: nothing is left to do
    prefix = f"{CRASH_ENV}: exiting after transfer write 1 ("
    with open(cluster.log_path, errors="replace") as log:
        log.seek(log_start)
        return [line.removeprefix(prefix).rstrip().removesuffix(")") for line in log if line.startswith(prefix)]


def _index(writes: list[str], start: int, wanted: str) -> int:
    for i in range(start, len(writes)):
        if writes[i].startswith(wanted):
            return i
    raise AssertionError(f"no write {wanted!r} after #{start} in {writes}")


def assert_order(writes: list[str], *wanted: str) -> None:
    at = 0
    for w in wanted:
        at = _index(writes, at, w) + 1


def test_crash_after_every_write_of_a_pvc_transfer(crash_cluster: Cluster) -> None:
    cluster = crash_cluster
    src, dst = namespace(cluster, "crash"), namespace(cluster, "crash")
    pvc_in(cluster, src, "vol")
    before = volume_snapshot(cluster, src, "vol")
    name = unique("crash-pvc")

    def volume_kept() -> None:
        assert marked(before["file"], before["marker"]) and digest(before["file"]) == before["sha256"]

    writes = crash_through(cluster, object_transfer(name, "PersistentVolumeClaim", src, "vol", dst, "moved"),
                           volume_kept)
    assert_order(writes, f"update objecttransfers {name}", f"update objecttransfers/status {name}",
                 f"update persistentvolumeclaims {src}/vol", f"update objecttransfers/status {name}",
                 f"update persistentvolumes {before['pv']}", f"delete persistentvolumeclaims {src}/vol",
                 f"update persistentvolumes {before['pv']}", f"create persistentvolumeclaims {dst}/moved",
                 f"update persistentvolumes {before['pv']}", f"update objecttransfers/status {name}",
                 f"update objecttransfers {name}")
    assert len(writes) >= 12
    assert_done(cluster, name)
    assert absent(cluster, "pvc", "vol", src)
    assert_moved(cluster, before, dst, "moved")


def test_crash_after_every_write_of_a_datavolume_transfer(crash_cluster: Cluster) -> None:
    cluster = crash_cluster
    src, dst = namespace(cluster, "crash"), namespace(cluster, "crash")
    blank_dv(cluster, src, "disk")
    before = volume_snapshot(cluster, src, "disk")
    name = unique("crash-dv")

    def volume_kept() -> None:
        assert marked(before["file"], before["marker"]) and digest(before["file"]) == before["sha256"]

    writes = crash_through(cluster, object_transfer(name, "DataVolume", src, "disk", dst, "moved"), volume_kept)
    uid = get(cluster, "objecttransfer", name)["metadata"]["uid"]
    child = f"pvc-transfer-{uid}"
    pv = before["pv"]
    assert_order(writes, f"update objecttransfers {name}", f"update datavolumes {src}/disk",
                 f"update persistentvolumeclaims {src}/disk", f"delete datavolumes {src}/disk",
                 f"create objecttransfers {child}", f"update objecttransfers {child}",
                 f"update persistentvolumeclaims {src}/disk",  # the child's mark on the claim
                 f"update persistentvolumes {pv}", f"delete persistentvolumeclaims {src}/disk",
                 f"update persistentvolumes {pv}", f"create persistentvolumeclaims {dst}/moved",
                 f"update persistentvolumes {pv}", f"update persistentvolumeclaims {dst}/moved",
                 f"create datavolumes {dst}/moved", f"delete objecttransfers {child}",
                 f"update objecttransfers {name}")
    assert len(writes) >= 20
    assert_done(cluster, name)
    assert absent(cluster, "dv", "disk", src) and absent(cluster, "objecttransfer", child)
    dv = get(cluster, "dv", "moved", dst)
    assert dv["status"]["phase"] == "Succeeded"
    assert_moved(cluster, before, dst, "moved")
