"""The README's storage walkthrough (examples/storage), run as written against a real `pycdi up`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cluster import Cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _disk(cluster: Cluster, claim: str) -> bytes:
    volume = cluster.kubectl("get", "pvc", claim, "-n", "vm-images", "-o", "jsonpath={.spec.volumeName}").stdout
    path = cluster.kubectl("get", "pv", volume, "-o", "jsonpath={.spec.hostPath.path}").stdout
    return (Path(path) / "disk.img").read_bytes()


def test_storage_walkthrough(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", str(EXAMPLES / "getting-started" / "01-namespace.yaml"))
    cluster.kubectl("apply", "-f", str(EXAMPLES / "storage" / "01-pvc.yaml"))
    cluster.kubectl("wait", "-n", "vm-images", "pvc/pvc-1", "--for=jsonpath={.status.phase}=Bound",
                    "--timeout=60s")
    header = cluster.kubectl("get", "pvc", "-n", "vm-images").stdout.splitlines()[0].split()
    assert header == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS", "AGE"]

    cluster.kubectl("apply", "-f", str(EXAMPLES / "storage" / "02-writer-pod.yaml"))
    cluster.kubectl("wait", "-n", "vm-images", "pod/writer", "--for=jsonpath={.status.phase}=Succeeded",
                    "--timeout=60s")
    assert cluster.kubectl("logs", "-n", "vm-images", "writer").stdout.strip()
    message = cluster.kubectl("get", "pod", "writer", "-n", "vm-images", "-o",
                              "jsonpath={.status.containerStatuses[0].state.terminated.message}").stdout
    assert json.loads(message)["bytesWritten"] == 1048576
    written = _disk(cluster, "pvc-1")
    assert len(written) == 1048576

    cluster.kubectl("apply", "-f", str(EXAMPLES / "storage" / "03-clone.yaml"))
    cluster.kubectl("wait", "-n", "vm-images", "pvc/pvc-1-clone", "--for=jsonpath={.status.phase}=Bound",
                    "--timeout=60s")
    assert _disk(cluster, "pvc-1-clone") == written

    cluster.kubectl("apply", "-f", str(EXAMPLES / "storage" / "04-snapshot.yaml"))
    cluster.kubectl("wait", "-n", "vm-images", "volumesnapshot/pvc-1-snap",
                    "--for=jsonpath={.status.readyToUse}=true", "--timeout=60s")
    cluster.kubectl("wait", "-n", "vm-images", "pvc/pvc-1-restored", "--for=jsonpath={.status.phase}=Bound",
                    "--timeout=60s")
    assert _disk(cluster, "pvc-1-restored") == written
