"""Container resource limits through cgroups (v2 where mounted, else the v1 memory and cpu controllers).

A container with `resources.limits` gets its own cgroup under `pycdi/`; the process joins it before exec, so
everything it starts is limited too. Where no cgroup hierarchy is writable, limits are not enforced (the agent
says so once in its log), as the kubelet cannot enforce them without a runtime either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ...api.quantity import QuantityError, parse_quantity, quantity_bytes

log = logging.getLogger(__name__)

ROOT = Path(os.environ.get("PYCDI_CGROUP_ROOT", "/sys/fs/cgroup"))
GROUP = "pycdi"
CFS_PERIOD_US = 100_000


@dataclass(frozen=True)
class Limits:
    memory_bytes: int | None = None
    cpu_millicores: int | None = None

    @property
    def empty(self) -> bool:
        return self.memory_bytes is None and self.cpu_millicores is None


def limits_of(container: dict[str, Any]) -> Limits:
    """The container's `resources.limits` for memory and cpu (unparseable values were refused at admission)."""
    limits = ((container.get("resources") or {}).get("limits")) or {}
    memory = cpu = None
    with contextlib.suppress(QuantityError, TypeError, ValueError):
        if "memory" in limits:
            memory = quantity_bytes(limits["memory"])
    with contextlib.suppress(QuantityError, TypeError, ValueError):
        if "cpu" in limits:
            cpu = int(parse_quantity(limits["cpu"]) * Decimal(1000))
    return Limits(memory, cpu)


def _v2() -> bool:
    return (ROOT / "cgroup.controllers").is_file()


@dataclass
class ContainerCgroup:
    """The cgroup directories (one for v2, one per controller for v1) a container's process joins."""

    dirs: list[Path]
    v2: bool

    @classmethod
    def create(cls, name: str, limits: Limits) -> ContainerCgroup | None:
        """Make and configure the cgroup; None when there is nothing to limit or no writable hierarchy."""
        if limits.empty:
            return None
        try:
            if _v2():
                return cls._create_v2(name, limits)
            return cls._create_v1(name, limits)
        except OSError as e:
            log.warning("resource limits are not enforced for %s: cgroups are not writable here (%s)", name, e)
            return None

    @classmethod
    def _create_v2(cls, name: str, limits: Limits) -> ContainerCgroup:
        parent = ROOT / GROUP
        parent.mkdir(exist_ok=True)
        # Children may use a controller only once the parent enables it for them.
        wanted = [c for c, on in (("memory", limits.memory_bytes), ("cpu", limits.cpu_millicores)) if on]
        with contextlib.suppress(OSError):
            (ROOT / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        path = parent / name
        path.mkdir(exist_ok=True)
        if limits.memory_bytes is not None:
            (path / "memory.max").write_text(str(limits.memory_bytes))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
        if limits.cpu_millicores is not None:
            quota = max(limits.cpu_millicores * CFS_PERIOD_US // 1000, 1000)
            (path / "cpu.max").write_text(f"{quota} {CFS_PERIOD_US}")
        return cls([path], v2=True)

    @classmethod
    def _create_v1(cls, name: str, limits: Limits) -> ContainerCgroup:
        dirs = []
        if limits.memory_bytes is not None:
            path = ROOT / "memory" / GROUP / name
            path.mkdir(parents=True, exist_ok=True)
            (path / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
            with contextlib.suppress(OSError):  # no swap accounting on many kernels: then there is no swap limit
                (path / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
            dirs.append(path)
        if limits.cpu_millicores is not None:
            path = ROOT / "cpu" / GROUP / name
            path.mkdir(parents=True, exist_ok=True)
            (path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            quota = max(limits.cpu_millicores * CFS_PERIOD_US // 1000, 1000)
            (path / "cpu.cfs_quota_us").write_text(str(quota))
            dirs.append(path)
        return cls(dirs, v2=False)

    def join(self) -> None:
        """In the child, before exec: move this process into the cgroup (its children follow)."""
        pid = str(os.getpid())
        for path in self.dirs:
            (path / "cgroup.procs").write_text(pid)

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed a process of this cgroup (the kubelet's OOMKilled)."""
        for path in self.dirs:
            source = path / ("memory.events" if self.v2 else "memory.oom_control")
            with contextlib.suppress(OSError, ValueError):
                for line in source.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        return False

    def remove(self) -> None:
        """Remove the directories once the container's processes are gone (a busy cgroup stays; harmless)."""
        for path in self.dirs:
            with contextlib.suppress(OSError):
                path.rmdir()


def sweep(min_age: float = 60.0, names: Collection[str] | None = None) -> int:
    """Remove every container cgroup under `pycdi/` that no process uses any more; returns how many went.

    A container's own removal can find its cgroup still busy (a child such as nbdkit exiting a moment after the
    main process); the agent sweeps at start and stop so that no directory outlives its containers for long.
    Only cgroups older than `min_age` seconds go: another agent on this machine may have just made one that its
    container has not joined yet. `names` limits the sweep to those cgroups.
    """
    cutoff = time.time() - min_age
    parents = [ROOT / GROUP] if _v2() else [ROOT / "memory" / GROUP, ROOT / "cpu" / GROUP]
    removed = 0
    for parent in parents:
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            if not child.is_dir() or (names is not None and child.name not in names):
                continue
            with contextlib.suppress(OSError):
                if child.stat().st_ctime <= cutoff and not (child / "cgroup.procs").read_text().strip():
                    child.rmdir()
                    removed += 1
    return removed
