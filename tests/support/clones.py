"""Helpers for the clone tests: sources with known bytes (a blank DataVolume and a real writer pod), DataVolume
waits, events, and the bytes of a claim's image on this machine."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.cluster import Cluster
from tests.support.storage import apply, get, wait_until

Obj = dict[str, Any]
WORKER = "quay.io/pycdi/pycdi-worker:latest"
MIB = 1 << 20
#: Where the writer puts its bytes: a few places, so holes lie between them.
WRITES = ((MIB, 3 * MIB), (17 * MIB + 4096, 2 * MIB), (40 * MIB, 512 * 1024))
WAIT = 180.0


def blank_dv(name: str, size: str = "64Mi", mode: str = "Filesystem", **annotations: str) -> Obj:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
            "spec": {"source": {"blank": {}}, "storage": {"volumeMode": mode, "accessModes": ["ReadWriteOnce"],
                                                          "resources": {"requests": {"storage": size}}}}}


def clone_dv(name: str, source_ns: str, source: str, *, size: str | None = None, mode: str | None = None,
             api: str = "storage", **extra: Any) -> Obj:
    target: Obj = {}
    if api == "pvc" or mode == "Block":  # the local class's profile lists Filesystem only
        target["accessModes"] = ["ReadWriteOnce"]
    if size is not None:
        target["resources"] = {"requests": {"storage": size}}
    if mode is not None:
        target["volumeMode"] = mode
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": name},
            "spec": {"source": {"pvc": {"namespace": source_ns, "name": source}}, api: target, **extra}}


def writer_pod(name: str, claim: str, *, block: bool = False, sleep: float = 0.0) -> Obj:
    """A real pod writing the pattern at WRITES into the claim's disk image (or device), one container per range
    (`pycdi worker-probe`); `sleep` keeps it running, and using the claim, afterwards."""
    path = "/dev/xvda" if block else "/data/disk.img"
    containers = []
    for i, (offset, length) in enumerate(WRITES):
        container: Obj = {"name": f"write-{i}", "image": WORKER,
                          "command": ["pycdi", "worker-probe", "--path", path, "--offset", str(offset),
                                      "--bytes", str(length)]}
        if block:
            container["volumeDevices"] = [{"name": "disk", "devicePath": path}]
        else:
            container["volumeMounts"] = [{"name": "disk", "mountPath": "/data"}]
        containers.append(container)
    if sleep:
        containers[-1]["command"] += ["--sleep", str(sleep)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "initContainers": containers[:-1], "containers": containers[-1:],
                     "volumes": [{"name": "disk", "persistentVolumeClaim": {"claimName": claim}}]}}


def wait_created(cluster: Cluster, kind: str, ns: str, name: str, timeout: float = WAIT) -> None:
    """Until the object exists (a controller makes it): a watch of one object needs it to exist first."""
    cluster.kubectl("wait", "--for=create", f"{kind}/{name}", "-n", ns, f"--timeout={int(timeout)}s",
                    timeout=timeout + 10)


def wait_dv(cluster: Cluster, ns: str, name: str, phase: str = "Succeeded", timeout: float = WAIT) -> Obj:
    wait_created(cluster, "dv", ns, name, timeout)
    return wait_until(cluster, "dv", name, ns, lambda dv: (dv.get("status") or {}).get("phase") == phase, timeout)


def wait_pod_done(cluster: Cluster, ns: str, name: str) -> None:
    pod = wait_until(cluster, "pod", name, ns,
                     lambda p: (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"), WAIT)
    assert pod["status"]["phase"] == "Succeeded", json.dumps(pod.get("status"), indent=1)


def source_with_data(cluster: Cluster, ns: str, name: str, *, size: str = "64Mi", mode: str = "Filesystem") -> None:
    """A populated source: a blank DataVolume, then (only once it succeeded) a writer pod, then the pod gone."""
    apply(cluster, blank_dv(name, size, mode), namespace=ns)
    wait_dv(cluster, ns, name)
    pod = f"write-{name}"
    apply(cluster, writer_pod(pod, name, block=mode == "Block"), namespace=ns)
    wait_pod_done(cluster, ns, pod)
    cluster.kubectl("delete", "pod", "-n", ns, pod, "--wait=true")


def image_path(cluster: Cluster, ns: str, claim: str) -> Path:
    """The file or device holding a claim's image: a Filesystem volume's disk.img, a Block volume's device (or its
    backing file when the device is gone)."""
    pv = get(cluster, "pv", get(cluster, "pvc", claim, ns)["spec"]["volumeName"])
    source = pv["spec"].get("hostPath") or pv["spec"].get("local") or {}
    path = Path(source["path"])
    if pv["spec"].get("volumeMode") == "Block":
        backing = (pv["metadata"].get("annotations") or {}).get("pycdi.io/block-backing")
        return path if path.exists() or not backing else Path(backing)
    return path / "disk.img"


def digest(path: Path, length: int) -> str:
    """sha256 of the first `length` bytes (a device may be larger than the image it holds)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = length
        while left > 0:
            chunk = f.read(min(4 * MIB, left))
            assert chunk, f"{path} is shorter than {length} bytes"
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def image_size(path: Path) -> int:
    with open(path, "rb") as f:
        return os.lseek(f.fileno(), 0, os.SEEK_END)


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def events(cluster: Cluster, ns: str, name: str) -> list[Obj]:
    """Events about one object, oldest first."""
    items: list[Obj] = cluster.kubectl_json("get", "events", "-n", ns, "--field-selector",
                                            f"involvedObject.name={name}")["items"]
    return sorted(items, key=lambda e: (e.get("firstTimestamp") or "", e["metadata"]["name"]))


def reasons(cluster: Cluster, ns: str, name: str) -> list[str]:
    return [str(e.get("reason")) for e in events(cluster, ns, name)]


def losetup(*args: str) -> str:
    return subprocess.run(["losetup", *args], capture_output=True, text=True, check=True).stdout.strip()
