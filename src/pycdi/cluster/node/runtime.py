"""The agent's per-pod state: worker image rules, restoring it from a stored status, back-off, messages."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import runner
from .logs import log_path
from .status import ContainerRun, now

Obj = dict[str, Any]

WORKER_IMAGE = os.environ.get("PYCDI_WORKER_IMAGE", "quay.io/pycdi/pycdi-worker:latest")
#: The worker image's entrypoint, used when a container gives no command.
ENTRYPOINT = ["pycdi"]
UNSUPPORTED_REASON = "UnsupportedImage"
#: Kubelet's crash back-off: 10 s doubling up to 5 min, forgotten after 10 min of good running.
BACKOFF_BASE = float(os.environ.get("PYCDI_BACKOFF_BASE_SECONDS", "10"))
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0
MAX_MESSAGE = 4096
#: The environment a container inherits from the agent: what a process needs to run at all.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
LOST_MESSAGE = "The container could not be located when the pod was terminated"


def image_repository(image: str) -> str:
    """The image reference without tag or digest."""
    ref = image.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > slash else ref


def unsupported_message() -> str:
    return f"the embedded node runs only pycdi worker images ({image_repository(WORKER_IMAGE)})"


def is_worker_image(image: str) -> bool:
    return image_repository(image) == image_repository(WORKER_IMAGE)


@dataclass
class PodRun:
    """What the agent knows about one pod it runs."""

    uid: str
    namespace: str
    name: str
    restart_policy: str
    grace: float
    init: list[ContainerRun]
    main: list[ContainerRun]
    pod_ip: str = ""
    start_time: str = ""
    volumes: dict[str, Path] | None = None
    waiters: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def containers(self) -> list[ContainerRun]:
        return self.init + self.main

    def active(self) -> list[ContainerRun]:
        return [c for c in self.containers if c.process is not None and c.process.returncode is None]


def runtime_dir(pods_dir: Path, uid: str) -> Path:
    """The host directory behind a pod's POD_RUNTIME_DIR (its workers' Unix sockets)."""
    return pods_dir / uid / "run"


def restore_run(pod: Obj, pods_dir: Path) -> PodRun:
    """The agent's view of a pod, continued from its stored status (after a restart of `pycdi up`)."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    uid = meta["uid"]
    pod_dir = pods_dir / uid

    def containers(field_name: str, status_field: str, init: bool) -> list[ContainerRun]:
        known = {s.get("name"): s for s in status.get(status_field) or [] if isinstance(s, dict)}
        result = []
        for c in spec.get(field_name) or []:
            run = ContainerRun(name=c["name"], image=c.get("image", ""), init=init)
            runner.kill_orphans(pod_dir / f"{c['name']}.pid", uid)
            old = known.get(c["name"])
            if old:
                run.instances = int(old.get("restartCount") or 0) + 1
                run.last_state = old.get("lastState") or {}
                run.container_id = old.get("containerID") or ""
                state = old.get("state") or {}
                if "running" in state:
                    # The process died with the previous agent: it ended, and counts as a restart.
                    run.state, run.exit_code, run.reason, run.message = "terminated", 137, \
                        "ContainerStatusUnknown", LOST_MESSAGE
                    run.started_at = state["running"].get("startedAt") or ""
                    run.finished_at = now()
                elif "terminated" in state:
                    load_terminated(run, state["terminated"])
                elif (run.last_state or {}).get("terminated"):
                    load_terminated(run, run.last_state["terminated"])
                    run.last_state = {}
                else:
                    run.instances = 0
            result.append(run)
        return result

    return PodRun(uid=uid, namespace=meta["namespace"], name=meta["name"],
                  restart_policy=spec.get("restartPolicy") or "Always",
                  grace=float(spec.get("terminationGracePeriodSeconds", 30) or 0),
                  init=containers("initContainers", "initContainerStatuses", True),
                  main=containers("containers", "containerStatuses", False),
                  start_time=status.get("startTime") or "")


def load_terminated(run: ContainerRun, terminated: Obj) -> None:
    run.state = "terminated"
    run.exit_code = int(terminated.get("exitCode") or 0)
    run.reason = terminated.get("reason") or ""
    run.message = terminated.get("message") or ""
    run.started_at = terminated.get("startedAt") or ""
    run.finished_at = terminated.get("finishedAt") or ""


def arm_backoff(c: ContainerRun, ran_for: float) -> None:
    """After an exit: the first restart is immediate, then BASE, 2*BASE... up to 5 min (kubelet's back-off)."""
    if ran_for > BACKOFF_RESET:
        c.backoff_seconds = 0.0
    if c.backoff_seconds:
        c.backoff_until = time.monotonic() + c.backoff_seconds
        c.backoff_seconds = min(c.backoff_seconds * 2, BACKOFF_MAX)
    else:
        c.backoff_until = 0.0
        c.backoff_seconds = BACKOFF_BASE


def termination_message(pods_dir: Path, uid: str, c: ContainerRun, container: Obj) -> str:
    """The termination message file, or with FallbackToLogsOnError after a failure the log's tail."""
    try:
        data = (pods_dir / uid / f"{c.name}.termination-log").read_bytes()[:MAX_MESSAGE]
    except OSError:
        data = b""
    if not data and c.exit_code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
        # kubelet: the last 80 lines, at most 2048 bytes, of the log
        try:
            lines = log_path(pods_dir, uid, c.name).read_bytes().splitlines(keepends=True)
        except OSError:
            lines = []
        data = b"".join(lines[-80:])[-2048:]
    return data.decode(errors="replace")


def duration(seconds: float) -> str:
    """Go's time.Duration formatting for whole seconds and minutes (10s, 1m20s, 5m0s)."""
    total = int(seconds)
    if total < 60:
        return f"{seconds:g}s" if seconds != total else f"{total}s"
    return f"{total // 60}m{total % 60}s"
