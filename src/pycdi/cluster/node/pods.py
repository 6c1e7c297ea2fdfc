"""The pod worker: runs the containers of pods bound to this node and reports their status (the kubelet)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

from ...api.constants import POD_RUNTIME_DIR
from ...datapath.paths import resolve
from ..apiserver import errors
from ..apiserver.service import ObjectService, WriteContext
from ..apiserver.store import Event
from ..control.loops import Loop, builtin
from . import runner
from .cgroups import ContainerCgroup, limits_of
from .env import ConfigError, command_line, container_env
from .events import Recorder
from .logs import log_path
from .runtime import (
    ENTRYPOINT,
    INHERITED_ENV,
    UNSUPPORTED_REASON,
    PodRun,
    arm_backoff,
    duration,
    is_worker_image,
    restore_run,
    runtime_dir,
    termination_message,
    unsupported_message,
)
from .status import ContainerRun, merge_conditions, now, pod_conditions, pod_phase, qos_class
from .volumes import VolumeError, container_path_map, prepare_volumes, unbound_claims

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]

def pod_subnet(data_dir: Path) -> str:
    """This cluster's /24 of loopback pod IPs, from its data dir: clusters side by side on one machine (tests run
    many at once) give their pods different addresses, so workers listening on fixed ports never collide."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).digest()
    return f"127.{16 + digest[0] % 224}.{digest[1]}"


class PodWorker(Loop):
    """Reconciles every pod whose `spec.nodeName` is this node."""

    name = "node-pods"
    resync_seconds = 30.0

    def __init__(self, service: ObjectService, node_name: str, data_dir: Path, api_port: int = 0) -> None:
        super().__init__(service)
        self.node_name = node_name
        self.pods_dir = data_dir / "pods"
        self.api_port = api_port
        self.pods = builtin(service, "", "pods")
        self.recorder = Recorder(service, "kubelet", node_name)
        self.runs: dict[Key, PodRun] = {}
        self.terminating: dict[Key, asyncio.Task[None]] = {}
        self.ips: dict[str, str] = {}  # pod uid -> IP
        self.subnet = pod_subnet(data_dir)
        #: Keys waiting for claims to bind: requeued on any claim or volume event.
        self.waiting_volumes: set[Key] = set()
        self._flagged: set[str] = set()  # uids already reported as unsupported
        self._terminated: set[str] = set()  # uids whose containers were stopped for deletion

    # ---- events ----------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if event.key == "core/pods":
            obj = event.object or {}
            if (obj.get("spec") or {}).get("nodeName") or event.type == "DELETED":
                self.queue.add((event.namespace, event.name))
            if event.type == "DELETED":
                uid = str((obj.get("metadata") or {}).get("uid"))
                self._flagged.discard(uid)
                self._terminated.discard(uid)
        elif event.key in ("core/persistentvolumeclaims", "core/persistentvolumes", "core/secrets",
                           "core/configmaps"):
            for key in list(self.waiting_volumes):
                self.queue.add(key)

    def initial_keys(self) -> Iterable[Hashable]:
        keys: list[Key] = []
        for pod in self.store.iter_objects(self.pods.storage_key):
            meta = pod["metadata"]
            if (pod.get("spec") or {}).get("nodeName") == self.node_name:
                ip = (pod.get("status") or {}).get("podIP")
                if ip:
                    self.ips.setdefault(meta["uid"], ip)
                keys.append((meta["namespace"], meta["name"]))
        return keys + list(self.runs)

    # ---- lookups ---------------------------------------------------------------------------------

    def lookup(self, plural: str, namespace: str, name: str) -> Obj | None:
        return self.store.get(f"core/{plural}", namespace, name)

    def running(self, uid: str, container: str) -> bool:
        for run in self.runs.values():
            if run.uid == uid:
                return any(c.name == container and c.running for c in run.containers)
        return False

    def _allocate_ip(self, uid: str) -> str:
        if uid in self.ips:
            return self.ips[uid]
        used = set(self.ips.values())
        for n in range(2, 255):
            ip = f"{self.subnet}.{n}"
            if ip not in used:
                self.ips[uid] = ip
                return ip
        raise RuntimeError(f"no free pod IP in {self.subnet}.0/24")

    # ---- reconcile -------------------------------------------------------------------------------

    async def reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        namespace, name = key
        pod = self.service.find(self.pods, namespace, name)
        run = self.runs.get(key)
        if run is not None and (pod is None or pod["metadata"]["uid"] != run.uid):
            self._forget(key, run, kill=True)
        if pod is None:
            return
        spec = pod.get("spec") or {}
        meta = pod["metadata"]
        if spec.get("nodeName") != self.node_name:
            await self._orphan(pod)
            return
        if meta.get("deletionTimestamp"):
            if key not in self.terminating and meta["uid"] not in self._terminated:
                self.terminating[key] = asyncio.create_task(self._terminate(pod, self.runs.get(key)))
            return
        images = [c.get("image", "") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
        if not all(is_worker_image(i) for i in images):
            await self._unsupported(pod)
            return
        run = self.runs.get(key)
        if run is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            run = self.runs[key] = self._restore(pod)
        pod = await self._sync(pod, run)
        await self._write_status(pod, run)

    async def _orphan(self, pod: Obj) -> None:
        """A terminating pod bound to a node that does not exist: nobody else will finish it (pod GC does)."""
        node = (pod.get("spec") or {}).get("nodeName")
        if pod["metadata"].get("deletionTimestamp") and node and \
                self.store.get("core/nodes", "", str(node)) is None:
            await self._delete_now(pod)

    async def _delete_now(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.service.delete(self.pods, meta["namespace"], meta["name"],
                                      {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                                      WriteContext())
        except errors.APIError as e:
            if e.code not in (404, 409):
                raise

    def _restore(self, pod: Obj) -> PodRun:
        """The agent's view of a pod, continued from its stored status (after a restart of `pycdi up`)."""
        run = restore_run(pod, self.pods_dir)
        if (pod.get("status") or {}).get("podIP"):
            self.ips[run.uid] = pod["status"]["podIP"]
        return run

    async def _sync(self, pod: Obj, run: PodRun) -> Obj:
        """Start or restart what should run now; returns the pod as last read (the status is written after)."""
        key = (run.namespace, run.name)
        if run.volumes is None:
            if unbound_claims(pod, self.lookup):
                self.waiting_volumes.add(key)
                return pod
            try:
                run.volumes = prepare_volumes(pod, self.pods_dir / run.uid, self.lookup)
            except VolumeError as e:
                self.waiting_volumes.add(key)
                await self.recorder.record(pod, "Warning", "FailedMount", str(e))
                self.queue.add_after(key, 5.0)
                return pod
            self.waiting_volumes.discard(key)
            run.pod_ip = self._allocate_ip(run.uid)
            run.start_time = run.start_time or now()
            if not pod.get("status", {}).get("podIP"):
                # Env from status.podIP needs the IP before the first container starts: report it now.
                await self._write_status(pod, run)
                pod = self.service.get(self.pods, run.namespace, run.name)
        policy = run.restart_policy
        for c in run.init:
            if c.succeeded:
                continue
            if c.running:
                return pod
            if c.state == "terminated" or c.last_state:
                # kubelet: a failed init container is retried unless restartPolicy is Never
                if policy == "Never" or not await self._may_restart(pod, run, c):
                    return pod
            await self._start(pod, run, c)
            return pod
        for c in run.main:
            if c.running:
                continue
            if c.instances == 0 and c.state == "waiting":
                await self._start(pod, run, c)
                continue
            failed = c.state == "terminated" and c.exit_code != 0
            if policy == "Always" or (policy == "OnFailure" and (failed or c.state == "waiting")):
                if await self._may_restart(pod, run, c):
                    await self._start(pod, run, c)
        return pod

    async def _may_restart(self, pod: Obj, run: PodRun, c: ContainerRun) -> bool:
        """Crash back-off: the first restart is immediate, then 10 s, 20 s... up to 5 min."""
        remaining = c.backoff_until - time.monotonic()
        if remaining <= 0:
            return True
        if c.state == "terminated":
            c.last_state = {"terminated": c.terminated_state()}
            c.state = "waiting"
            await self.recorder.record(pod, "Warning", "BackOff", "Back-off restarting failed container "
                                       f"{c.name} in pod {run.name}_{run.namespace}({run.uid})",
                                       self._field_path(c))
        c.waiting_reason = "CrashLoopBackOff"
        c.waiting_message = (f"back-off {duration(c.backoff_seconds)} restarting failed container={c.name} "
                             f"pod={run.name}_{run.namespace}({run.uid})")
        self.queue.add_after((run.namespace, run.name), remaining)
        return False

    @staticmethod
    def _field_path(c: ContainerRun) -> str:
        return f"spec.{'initContainers' if c.init else 'containers'}{{{c.name}}}"

    async def _start(self, pod: Obj, run: PodRun, c: ContainerRun) -> None:
        spec = pod.get("spec") or {}
        container = next(x for x in (spec.get("initContainers") or []) + (spec.get("containers") or [])
                         if x.get("name") == c.name)
        pod_dir = self.pods_dir / run.uid
        pod_dir.mkdir(parents=True, exist_ok=True)
        namespace = run.namespace
        try:
            env = container_env(pod, container, lambda kind, name: self.lookup(
                "configmaps" if kind == "ConfigMap" else "secrets", namespace, name), self._allocatable())
        except ConfigError as e:
            c.state, c.waiting_reason, c.waiting_message = "waiting", "CreateContainerConfigError", str(e)
            await self.recorder.record(pod, "Warning", "Failed", f"Error: {e}", self._field_path(c))
            self.queue.add_after((namespace, run.name), 2.0)
            return
        assert run.volumes is not None
        term_file = pod_dir / f"{c.name}.termination-log"
        term_file.write_bytes(b"")
        mapping = container_path_map(container, run.volumes)
        # Private to the node's own user: a Unix socket there is reachable by `pycdi up` and no one else.
        private = runtime_dir(self.pods_dir, run.uid)
        private.mkdir(mode=0o700, exist_ok=True)
        private.chmod(0o700)
        mapping.setdefault(POD_RUNTIME_DIR, os.fspath(private))
        mapping[str(container.get("terminationMessagePath") or "/dev/termination-log")] = os.fspath(term_file)
        full_env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        full_env.update({"HOSTNAME": run.name, "POD_IP": run.pod_ip, runner.POD_UID_ENV: run.uid,
                         "PYCDI_PATH_MAP": json.dumps(mapping, sort_keys=True),
                         "PYCDI_TERMINATION_MESSAGE_PATH": str(container.get("terminationMessagePath")
                                                               or "/dev/termination-log")})
        if self.api_port:
            full_env.update({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.api_port)})
        full_env.update(env)
        argv = command_line(container, env, ENTRYPOINT)
        workdir = pod_dir
        if container.get("workingDir"):
            mapped = resolve(str(container["workingDir"]), mapping)
            workdir = mapped if mapped.is_dir() else pod_dir
        current = log_path(self.pods_dir, run.uid, c.name)
        if current.exists():
            current.replace(log_path(self.pods_dir, run.uid, c.name, previous=True))
        if c.state == "terminated":
            c.last_state = {"terminated": c.terminated_state()}
        c.instances += 1
        c.container_id = f"pycdi://{run.uid[:8]}-{c.name}-{c.instances}"
        c.started_at = now()
        c.finished_at = c.reason = c.message = ""
        if c.instances == 1:
            await self.recorder.record(pod, "Normal", "Pulled", f'Container image "{c.image}" already present on '
                                       "machine", self._field_path(c))
        cgroup = ContainerCgroup.create(f"{run.uid}-{c.name}", limits_of(container))
        try:
            process = await runner.start(argv, full_env, workdir, current, cgroup)
        except OSError as e:
            if cgroup is not None:
                cgroup.remove()
            c.state, c.exit_code, c.reason = "terminated", 128, "StartError"
            c.message = f"failed to start container process: exec: {argv[0] if argv else ''!r}: {e.strerror}"
            c.finished_at = now()
            arm_backoff(c, 0.0)
            await self.recorder.record(pod, "Warning", "Failed", f"Error: {c.message}", self._field_path(c))
            self.queue.add((namespace, run.name))
            return
        (pod_dir / f"{c.name}.pid").write_text(str(process.pid))
        c.process, c.state = process, "running"
        c.waiting_reason = c.waiting_message = ""
        await self.recorder.record(pod, "Normal", "Created", f"Created container: {c.name}", self._field_path(c))
        await self.recorder.record(pod, "Normal", "Started", f"Started container {c.name}", self._field_path(c))
        started = time.monotonic()
        task = asyncio.create_task(self._wait(run, c, process, container, started, cgroup))
        run.waiters.add(task)
        task.add_done_callback(run.waiters.discard)

    async def _wait(self, run: PodRun, c: ContainerRun, process: asyncio.subprocess.Process, container: Obj,
                    started: float, cgroup: ContainerCgroup | None = None) -> None:
        code = runner.exit_code(await process.wait())
        oom = cgroup is not None and cgroup.oom_killed()
        if cgroup is not None:
            cgroup.remove()
        if c.process is not process:
            return
        c.process = None
        c.state, c.exit_code, c.finished_at = "terminated", code, now()
        c.reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        c.message = termination_message(self.pods_dir, run.uid, c, container)
        arm_backoff(c, time.monotonic() - started)
        self.queue.add((run.namespace, run.name))

    def _allocatable(self) -> dict[str, str]:
        node = self.store.get("core/nodes", "", self.node_name) or {}
        return dict((node.get("status") or {}).get("allocatable") or {})

    # ---- status ----------------------------------------------------------------------------------

    async def _write_status(self, pod: Obj, run: PodRun) -> None:
        old = pod.get("status") or {}
        phase = pod_phase(run.init, run.main, run.restart_policy)
        status: Obj = {**old, "phase": phase, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
                       "qosClass": qos_class(pod)}
        if run.pod_ip:
            status["podIP"] = run.pod_ip
            status["podIPs"] = [{"ip": run.pod_ip}]
        if run.start_time:
            status["startTime"] = run.start_time
        if run.init:
            status["initContainerStatuses"] = [c.to_status() for c in run.init]
        status["containerStatuses"] = [c.to_status() for c in run.main]
        for c in run.main:
            if c.state == "waiting" and any(not i.succeeded for i in run.init) and c.instances == 0:
                c.waiting_reason = "PodInitializing"
        status["conditions"] = merge_conditions(
            old.get("conditions") or [], pod_conditions(run.init, run.main, phase, run.volumes is not None),
            now())
        if status == old:
            return
        new = {**pod, "status": status}
        self.service.present(self.pods, new)
        await self.service.update(self.pods, run.namespace, run.name, new, WriteContext(), "status")

    async def _unsupported(self, pod: Obj) -> None:
        """Scheduled but never run: Pending, with a condition and an event saying why (written once)."""
        meta, status = pod["metadata"], dict(pod.get("status") or {})
        marked = any(c.get("type") == "ContainersReady" and c.get("reason") == UNSUPPORTED_REASON
                     for c in status.get("conditions") or [])
        if marked:
            return
        message = unsupported_message()
        containers = [ContainerRun(name=c.get("name", ""), image=c.get("image", ""), waiting_reason=UNSUPPORTED_REASON,
                                   waiting_message=message) for c in (pod.get("spec") or {}).get("containers") or []]
        status.update({"phase": "Pending", "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
                       "qosClass": qos_class(pod), "startTime": status.get("startTime") or now(),
                       "containerStatuses": [c.to_status() for c in containers]})
        status["conditions"] = merge_conditions(
            status.get("conditions") or [],
            pod_conditions([], containers, "Pending", False, UNSUPPORTED_REASON, message), now())
        try:
            await self.service.update(self.pods, meta["namespace"], meta["name"], {**pod, "status": status},
                                      WriteContext(), "status")
        except errors.APIError as e:
            if e.code == 404:
                return
            raise
        if meta["uid"] not in self._flagged:
            self._flagged.add(meta["uid"])
            await self.recorder.record(pod, "Warning", UNSUPPORTED_REASON, message)

    # ---- termination -----------------------------------------------------------------------------

    async def _terminate(self, pod: Obj, run: PodRun | None) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        try:
            grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
            if run is not None:
                for c in run.active():
                    await self.recorder.record(pod, "Normal", "Killing", f"Stopping container {c.name}",
                                               self._field_path(c))
                await asyncio.gather(*(runner.stop(c.process, grace) for c in run.active() if c.process))
            self._terminated.add(pod["metadata"]["uid"])
            await self._delete_now(pod)
        finally:
            self.terminating.pop(key, None)
            self.queue.add(key)

    def _forget(self, key: Key, run: PodRun, kill: bool) -> None:
        """The pod is gone: stop what still runs, drop its state and its directory."""
        self.runs.pop(key, None)
        self.waiting_volumes.discard(key)
        self.ips.pop(run.uid, None)
        self.recorder.forget(run.uid)
        self._flagged.discard(run.uid)
        self._terminated.discard(run.uid)
        for c in run.active():
            if kill and c.process is not None:
                runner.signal_group(c.process.pid, signal.SIGKILL)
        shutil.rmtree(self.pods_dir / run.uid, ignore_errors=True)

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every container (SIGTERM, then SIGKILL): `pycdi up` is going away."""
        self.stop()
        for task in list(self.terminating.values()):
            task.cancel()
        for run in self.runs.values():
            for task in list(run.waiters):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        procs = [c.process for run in self.runs.values() for c in run.active() if c.process is not None]
        grace = min([timeout] + [run.grace for run in self.runs.values() if run.active()])
        await asyncio.gather(*(runner.stop(p, grace) for p in procs), return_exceptions=True)
