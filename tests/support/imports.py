"""Helpers for the DataVolume import acceptance tests: DataVolume manifests, a watch until many DataVolumes finish,
and checks of the bytes an import left in a volume (digest of the image's length, zero tail, allocation)."""

from __future__ import annotations

import errno
import hashlib
import os
import selectors
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import KUBECTL, Cluster

MiB = 1 << 20
DONE_PHASES = ("Succeeded", "Failed")
Obj = dict[str, Any]


def data_volume(name: str, source: Obj, size: str, *, mode: str = "Filesystem", api: str = "storage",
                content_type: str | None = None, annotations: dict[str, str] | None = None,
                storage_class: str | None = None, **spec: Any) -> Obj:
    """A v1beta1 DataVolume. The `pvc` API gets ReadWriteOnce (it has no defaults), and so does Block: the
    hostpath provisioner's StorageProfile lists only RWO Filesystem, as upstream's capability table does."""
    claim: Obj = {"resources": {"requests": {"storage": size}}, "volumeMode": mode}
    if api == "pvc" or mode == "Block":
        claim["accessModes"] = ["ReadWriteOnce"]
    if storage_class:
        claim["storageClassName"] = storage_class
    body: Obj = {"source": source, api: claim, **spec}
    if content_type:
        body["contentType"] = content_type
    meta: Obj = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": meta, "spec": body}


def apply_yaml(cluster: Cluster, ns: str, *objs: Obj) -> None:
    """One `kubectl apply` of every document, from YAML (the way a user applies a multi-document file)."""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(objs), timeout=300)


def watch_dvs(cluster: Cluster, ns: str, names: list[str], timeout: float,
              history: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """Watch the namespace's DataVolumes (`kubectl get -w`) until each named one is Succeeded or Failed, or the
    time is up; returns name -> last phase seen ("" for none). `history` collects every (name, phase) seen."""
    phases = dict.fromkeys(names, "")
    cmd = [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "--cache-dir", str(cluster.data_dir / "kubectl-cache"),
           "get", "dv", "-n", ns, "-w", "--no-headers", "-o", "custom-columns=N:.metadata.name,P:.status.phase"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while any(p not in DONE_PHASES for p in phases.values()):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    break
                line = proc.stdout.readline()
                if not line:
                    break  # the watch ended (server closed it): report what we have
                cols = line.split()
                if len(cols) == 2 and cols[0] in phases:
                    phases[cols[0]] = "" if cols[1] == "<none>" else cols[1]
                    if history is not None:
                        history.append((cols[0], phases[cols[0]]))
    finally:
        proc.kill()  # the kubectl we started, by its handle
        proc.wait()
    return phases


def describe_dv(cluster: Cluster, ns: str, name: str) -> str:
    """The DV's phase, conditions and its PVC's CDI annotations: what a failed assertion should show."""
    dv = cluster.kubectl_json("get", "dv", name, "-n", ns)
    status = dv.get("status") or {}
    conds = "; ".join(f"{c['type']}={c['status']} {c.get('reason', '')}: {c.get('message', '')}"
                      for c in status.get("conditions") or [])
    pvc = cluster.kubectl("get", "pvc", name, "-n", ns, "-o", "json", check=False)
    ann = {}
    if pvc.returncode == 0:
        ann = {k: v for k, v in (yaml.safe_load(pvc.stdout)["metadata"].get("annotations") or {}).items()
               if k.startswith("cdi.kubevirt.io/storage.")
               and any(w in k for w in ("condition", "fatal", "retry", "phase"))}
    return f"{name}: phase={status.get('phase')} restarts={status.get('restartCount')} [{conds}] {ann}"


def volume_path(cluster: Cluster, ns: str, claim: str) -> Path:
    """The PV's hostPath: the volume directory (Filesystem) or the block device (Block)."""
    pvc = cluster.kubectl_json("get", "pvc", claim, "-n", ns)
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    return Path(pv["spec"]["hostPath"]["path"])


def claim_bytes(cluster: Cluster, ns: str, claim: str) -> int:
    """The PVC's requested size in bytes (what the importer sees as IMPORTER_IMAGE_SIZE)."""
    from pycdi.api.quantity import quantity_bytes

    pvc = cluster.kubectl_json("get", "pvc", claim, "-n", ns)
    return quantity_bytes(pvc["spec"]["resources"]["requests"]["storage"])


def sha256_prefix(path: Path, length: int) -> str:
    """SHA-256 of the first `length` bytes (a device or a file); a short read is an error."""
    h = hashlib.sha256()
    left = length
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(4 * MiB, left))
            if not chunk:
                raise AssertionError(f"{path} ends {left} bytes before the image's length {length}")
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def nonzero_after(path: Path, start: int) -> int | None:
    """The offset of the first non-zero byte at or after `start`, or None: holes are skipped with SEEK_DATA, data
    extents are read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        offset = start
        while offset < end:
            try:
                data = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    return None  # only a hole is left
                raise
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            pos = data
            while pos < hole:
                chunk = os.pread(fd, min(4 * MiB, hole - pos), pos)
                if not chunk:
                    break
                stripped = chunk.lstrip(b"\0")
                if stripped:
                    return pos + len(chunk) - len(stripped)
                pos += len(chunk)
            offset = hole
        return None
    finally:
        os.close(fd)


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def block_backing(cluster: Cluster, ns: str, claim: str) -> Path:
    """The sparse file behind a Block volume (its loop device's backing file, or the file itself)."""
    pvc = cluster.kubectl_json("get", "pvc", claim, "-n", ns)
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    backing = (pv["metadata"].get("annotations") or {}).get("pycdi.io/block-backing")
    return Path(backing or pv["spec"]["hostPath"]["path"])


def wait_dv_phase(cluster: Cluster, ns: str, name: str, phase: str, timeout: int = 180) -> None:
    """`kubectl wait` for a DataVolume phase; on a timeout the assertion says where the DataVolume is."""
    done = cluster.kubectl("wait", "-n", ns, f"dv/{name}", f"--for=jsonpath={{.status.phase}}={phase}",
                           f"--timeout={timeout}s", timeout=timeout + 30, check=False)
    assert done.returncode == 0, f"waiting for {phase}: {describe_dv(cluster, ns, name)}\n{done.stderr}"
