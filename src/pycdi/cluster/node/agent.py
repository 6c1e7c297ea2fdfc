"""The node agent: registers this machine as a Node, renews its Lease, runs the scheduler and the pod worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...api.constants import POD_RUNTIME_DIR
from ..apiserver import errors
from ..apiserver.service import ObjectService, WriteContext
from ..control.loops import Loop, builtin, supervise
from . import cgroups
from .logs import LogReader
from .pods import PodWorker
from .runtime import runtime_dir
from .scheduler import Scheduler
from .status import merge_conditions, now

log = logging.getLogger(__name__)

Obj = dict[str, Any]
KUBELET_VERSION = "v1.32.0-pycdi"
LEASE_SECONDS = 40
#: kubelet renews its lease every quarter of the lease duration and reports node status every 5 min.
RENEW_SECONDS = 10.0
STATUS_SECONDS = 60.0
MAX_PODS = 110


def default_node_name() -> str:
    """The lowercased short hostname, as the kubelet names its node by default."""
    return socket.gethostname().split(".")[0].lower() or "localhost"


def go_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x"}.get(machine, machine)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _memory_kib() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def node_object(name: str) -> Obj:
    """The Node as the kubelet registers it (labels, capacity, addresses, nodeInfo, conditions)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        pycdi_version = version("pycdi")
    except PackageNotFoundError:
        pycdi_version = "0.0.0"
    arch = go_arch()
    capacity = {"cpu": str(os.cpu_count() or 1), "memory": f"{_memory_kib()}Ki", "pods": str(MAX_PODS)}
    stamp = now()
    conditions = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {},
        "status": {
            "capacity": capacity, "allocatable": dict(capacity),
            "conditions": [{"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": stamp,
                            "lastTransitionTime": stamp} for t, s, r, m in conditions],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": _read("/etc/machine-id"), "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
                "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
                "osImage": _os_image(), "containerRuntimeVersion": f"pycdi://{pycdi_version}",
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux", "architecture": arch},
        },
    }


class NodeAgent:
    """Starts and stops the node's parts; `ready()` is the readiness check "node-agent"."""

    def __init__(self, service: ObjectService, data_dir: Path, node_name: str | None = None,
                 api_port: int = 0) -> None:
        self.service = service
        self.node_name = node_name or default_node_name()
        self.data_dir = data_dir
        self.nodes = builtin(service, "", "nodes")
        self.leases = builtin(service, "coordination.k8s.io", "leases")
        self.scheduler = Scheduler(service, self.node_name)
        self.worker = PodWorker(service, self.node_name, data_dir, api_port)
        self.log_reader = LogReader(service, data_dir / "pods", self.worker.running)
        self.loops: tuple[Loop, ...] = (self.scheduler, self.worker)
        self._tasks: list[asyncio.Task[None]] = []
        self._registered = False
        self._listening = False

    async def start(self) -> None:
        cgroups.sweep()  # containers of an earlier agent on this machine are gone: so are their limits
        await self.register()
        if not self._listening:
            for loop in self.loops:
                self.service.store.add_listener(loop.listener)
            self._listening = True
        for loop in self.loops:
            loop.resume()
            self._tasks.append(asyncio.create_task(supervise(loop, "node"), name=f"node:{loop.name}"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="node:heartbeat"))

    def local_path(self, pod_uid: str, container_path: str) -> Path | None:
        """The host path behind `container_path` in a pod's private runtime directory (POD_RUNTIME_DIR), for
        `pycdi up`'s own components to reach a worker's Unix socket; None for any other path."""
        prefix = POD_RUNTIME_DIR + "/"
        if not container_path.startswith(prefix) or not pod_uid or "/" in pod_uid or pod_uid in (".", ".."):
            return None
        return runtime_dir(self.worker.pods_dir, pod_uid) / container_path.removeprefix(prefix)

    def ready(self) -> bool:
        return self._registered and bool(self._tasks) and all(loop.synced for loop in self.loops) and \
            not any(t.done() for t in self._tasks)

    async def stop(self) -> None:
        """Stop the loops, then every worker process (SIGTERM, then SIGKILL).

        The loops go first so that the workers' ends are not reported: to the next agent on this DIR
        they are containers that died with their node, restarted (and counted) per restartPolicy.
        """
        self.scheduler.stop()
        self.worker.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.worker.shutdown()
        cgroups.sweep()

    # ---- node and lease --------------------------------------------------------------------------

    async def register(self) -> None:
        """Create the Node, or refresh an existing one's labels and status (a restart of `pycdi up`)."""
        desired = node_object(self.node_name)
        existing = self.service.find(self.nodes, "", self.node_name)
        if existing is None:
            await self.service.create(self.nodes, "", desired, WriteContext(field_manager="kubelet"))
        else:
            existing["metadata"].setdefault("labels", {}).update(desired["metadata"]["labels"])
            existing["metadata"].setdefault("annotations", {}).update(desired["metadata"]["annotations"])
            existing = await self.service.update(self.nodes, "", self.node_name, existing,
                                                 WriteContext(field_manager="kubelet"))
            await self._write_status(existing, desired["status"])
        await self.renew_lease()
        self._registered = True

    async def _write_status(self, node: Obj, desired: Obj) -> None:
        stamp = now()
        status = {**(node.get("status") or {}), **desired}
        conditions = merge_conditions((node.get("status") or {}).get("conditions") or [],
                                      [{k: v for k, v in c.items() if k not in ("lastHeartbeatTime",
                                                                                "lastTransitionTime")}
                                       for c in desired["conditions"]], stamp)
        for c in conditions:
            c.pop("lastProbeTime", None)
            c["lastHeartbeatTime"] = stamp
        status["conditions"] = conditions
        await self.service.update(self.nodes, "", self.node_name, {**node, "status": status},
                                  WriteContext(field_manager="kubelet"), "status")

    async def renew_lease(self) -> None:
        node = self.service.find(self.nodes, "", self.node_name)
        renew = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # MicroTime
        lease = self.service.find(self.leases, "kube-node-lease", self.node_name)
        if lease is None:
            owner = [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                      "uid": node["metadata"]["uid"]}] if node else []
            await self.service.create(self.leases, "kube-node-lease", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node_name, "namespace": "kube-node-lease", "ownerReferences": owner},
                "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": LEASE_SECONDS,
                         "renewTime": renew}}, WriteContext(field_manager="kubelet"))
            return
        lease["spec"] = {**(lease.get("spec") or {}), "holderIdentity": self.node_name,
                         "leaseDurationSeconds": LEASE_SECONDS, "renewTime": renew}
        await self.service.update(self.leases, "kube-node-lease", self.node_name, lease,
                                  WriteContext(field_manager="kubelet"))

    async def _heartbeat(self) -> None:
        since_status = 0.0
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await self.renew_lease()
                since_status += RENEW_SECONDS
                node = self.service.find(self.nodes, "", self.node_name)
                if node is None:
                    await self.register()  # someone deleted the Node: the kubelet registers again
                elif since_status >= STATUS_SECONDS:
                    since_status = 0.0
                    await self._write_status(node, node_object(self.node_name)["status"])
            except errors.APIError as e:
                log.warning("node heartbeat failed: %s", e.message)
