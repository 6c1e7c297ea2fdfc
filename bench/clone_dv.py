"""DataVolume clone benchmark: a 10 GiB / 1 GiB-data volume cloned by csi-clone on reflink storage (XFS), create to
Succeeded through the embedded cluster, same namespace and across namespaces, next to `cp --reflink` of the file."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.support.cluster import Cluster
from tests.support.xfs import XfsUnavailable, xfs_filesystem

from pycdi.cluster.storage.fsinfo import allocated_bytes

GiB, MiB = 1 << 30, 1 << 20
VOLUME = 10 * GiB
DATA = 1 * GiB
CHUNK = 4 * MiB
ROUNDS = 3
TARGET_S = 2.0
XFS_SIZE = 32 * GiB  # sparse: the source and its reflinked clones share one GiB of data
NS, OTHER_NS = "bench-clone", "bench-clone-other"
DV_PATH = "/apis/cdi.kubevirt.io/v1beta1/namespaces/{ns}/datavolumes"


def _watch_until_done(cluster: Cluster, ns: str, name: str, rv: str, timeout: float = 600) -> list[str]:
    """The phases the DataVolume went through, ending with Succeeded or Failed."""
    query = urllib.parse.urlencode({"watch": "true", "resourceVersion": rv, "timeoutSeconds": str(int(timeout)),
                                    "fieldSelector": f"metadata.name={name}"})
    req = urllib.request.Request(f"{cluster.server}{DV_PATH.format(ns=ns)}?{query}")
    req.add_header("Authorization", f"Bearer {cluster.token}")
    phases: list[str] = []
    with urllib.request.urlopen(req, context=cluster.ssl_context(), timeout=timeout) as resp:
        for line in resp:
            obj = json.loads(line)["object"]
            phase = str((obj.get("status") or {}).get("phase", ""))
            if phase and (not phases or phases[-1] != phase):
                phases.append(phase)
            if phase in ("Succeeded", "Failed"):
                return phases
    raise RuntimeError(f"DataVolume {ns}/{name} did not finish: phases {phases}")


def _create_dv(cluster: Cluster, ns: str, name: str, source: dict[str, Any]) -> tuple[float, list[str]]:
    body = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": name},
            "spec": {"source": source, "storage": {"volumeMode": "Filesystem",
                                                   "resources": {"requests": {"storage": str(VOLUME)}}}}}
    start = time.perf_counter()
    status, created, _ = cluster.request("POST", DV_PATH.format(ns=ns), body)
    if status != 201:
        raise RuntimeError(f"DataVolume create: {status} {created}")
    phases = _watch_until_done(cluster, ns, name, created["metadata"]["resourceVersion"])
    seconds = time.perf_counter() - start
    if phases[-1] != "Succeeded":
        raise RuntimeError(f"DataVolume {ns}/{name} ended {phases}:\n{cluster.log()[-4000:]}")
    return seconds, phases


def _disk_of(cluster: Cluster, ns: str, name: str) -> Path:
    pvc = cluster.kubectl_json("get", "pvc", name, "-n", ns)
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    return Path(pv["spec"]["hostPath"]["path"]) / "disk.img"


def _fill(disk: Path) -> None:
    """1 GiB of random data in 4 MiB chunks spread evenly over the disk, flushed."""
    size = disk.stat().st_size
    chunks = DATA // CHUNK
    stride = (size - CHUNK) // chunks
    fd = os.open(disk, os.O_WRONLY)
    try:
        for i in range(chunks):
            os.pwrite(fd, os.urandom(CHUNK), i * stride)
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_bytes(a: Path, b: Path) -> bool:
    return subprocess.run(["cmp", "-s", str(a), str(b)], check=False).returncode == 0


def _delete_dv(cluster: Cluster, ns: str, name: str) -> None:
    cluster.request("DELETE", f"{DV_PATH.format(ns=ns)}/{name}")
    cluster.kubectl("wait", "-n", ns, "--for=delete", f"pvc/{name}", "--timeout=120s")


def measure(mnt: Path, results: dict[str, float]) -> None:
    cluster = Cluster(mnt / "cluster")
    try:
        cluster.start()
        for ns in (NS, OTHER_NS):
            cluster.kubectl("create", "namespace", ns)
        _create_dv(cluster, NS, "golden", {"blank": {}})
        source = _disk_of(cluster, NS, "golden")
        _fill(source)
        reflink_times: list[float] = []
        times: dict[str, list[float]] = {"same": [], "cross": []}
        for i in range(ROUNDS):
            for kind, ns in (("same", NS), ("cross", OTHER_NS)):
                name = f"clone-{uuid.uuid4().hex[:6]}"
                seconds, phases = _create_dv(cluster, ns, name, {"pvc": {"namespace": NS, "name": "golden"}})
                clone = _disk_of(cluster, ns, name)
                if "CSICloneInProgress" not in phases:
                    raise RuntimeError(f"{kind} clone went {phases}: not a csi-clone")
                if i == 0 and not _same_bytes(source, clone):
                    raise RuntimeError(f"{kind} clone {clone} differs from {source}")
                times[kind].append(seconds)
                went = " -> ".join(phases)
                print(f"  round {i + 1}/{ROUNDS} {kind}-namespace clone: {seconds:.2f} s ({went})", flush=True)
                _delete_dv(cluster, ns, name)
            copy = source.with_name("reflink-copy.img")
            start = time.perf_counter()
            subprocess.run(["cp", "--reflink=always", str(source), str(copy)], check=True)
            reflink_times.append(time.perf_counter() - start)
            copy.unlink()
        results["clone.dv_csi_same_ns_s"] = statistics.median(times["same"])
        results["clone.dv_csi_cross_ns_s"] = statistics.median(times["cross"])
        results["clone.dv_csi.cp_reflink_s"] = statistics.median(reflink_times)
        results["clone.dv_csi.source_allocated_mb"] = allocated_bytes(source) / 1e6
    finally:
        cluster.stop()


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    print(f"clone DataVolume: {VOLUME >> 30} GiB volume with {DATA >> 30} GiB data on XFS (reflink), csi-clone, "
          f"create -> Succeeded, median of {ROUNDS} (target < {TARGET_S:.0f} s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="pycdi-bench-clone-dv-") as tmp:
        try:
            with xfs_filesystem(Path(tmp), XFS_SIZE) as mnt:
                measure(mnt, results)
        except XfsUnavailable as err:
            print(f"  skipped: {err}")
            return results
    for key in ("clone.dv_csi_same_ns_s", "clone.dv_csi_cross_ns_s"):
        verdict = "pass" if results[key] < TARGET_S else "FAIL"
        print(f"  {key}: {results[key]:.2f} s ({verdict}; cp --reflink of the file: "
              f"{results['clone.dv_csi.cp_reflink_s']:.3f} s)")
    return results


if __name__ == "__main__":
    run()
