"""Container processes: started in their own process group, stopped with SIGTERM then SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from .cgroups import ContainerCgroup

#: Marks a container process (in its environment) so a restarted agent can find orphans of its pods.
POD_UID_ENV = "PYCDI_POD_UID"

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _die_with_agent() -> None:
    """In the child before exec: be killed when the agent dies, as containers die with their kubelet's
    runtime here (a SIGKILLed `pycdi up` must not leave workers behind)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def worker_argv(argv: list[str]) -> list[str]:
    """`pycdi ...` runs this installation's pycdi (the worker image's entrypoint); other commands as given."""
    if argv and argv[0] in ("pycdi", "/usr/bin/pycdi", "/usr/local/bin/pycdi"):
        return [sys.executable, "-m", "pycdi", *argv[1:]]
    return argv


async def start(argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path,
                cgroup: ContainerCgroup | None = None) -> asyncio.subprocess.Process:
    """Start one container process writing stdout and stderr to its log file; raises OSError."""
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def before_exec() -> None:
        _die_with_agent()
        if cgroup is not None:
            cgroup.join()

    with open(log_path, "ab") as log:
        return await asyncio.create_subprocess_exec(
            *worker_argv(argv), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
            env=dict(env), cwd=cwd, start_new_session=True, preexec_fn=before_exec)


def signal_group(pid: int, sig: int) -> None:
    """Signal the container's whole process group (its children too), as a runtime signals the container."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def stop(process: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM, then SIGKILL once `grace` seconds have passed; returns the exit code as the kubelet reports it."""
    if process.returncode is None:
        signal_group(process.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), timeout=max(grace, 0.0))
        except TimeoutError:
            signal_group(process.pid, signal.SIGKILL)
            await process.wait()
    # The process is gone; anything it left in its group goes too.
    signal_group(process.pid, signal.SIGKILL)
    return exit_code(process.returncode)


def exit_code(returncode: int | None) -> int:
    """A runtime reports death by signal N as exit code 128 + N."""
    if returncode is None:
        return 0
    return returncode if returncode >= 0 else 128 - returncode


def kill_orphans(pid_file: Path, pod_uid: str) -> None:
    """Kill a container process an earlier agent left running (only if it is really that pod's process)."""
    try:
        pid = int(pid_file.read_text().strip())
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except (OSError, ValueError):
        return
    if f"{POD_UID_ENV}={pod_uid}".encode() in environ.split(b"\0"):
        signal_group(pid, signal.SIGKILL)
