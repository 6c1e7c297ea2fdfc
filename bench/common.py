"""What the benchmarks share: process measurements from /proc (CPU time, peak RSS, cgroup quota, a sampler),
running a command timed, fsyncing a result, the interleaving order of rounds and the printed table."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
#: How a row's target shows: met, missed, or none (shown for reference).
VERDICT = {True: "pass", False: "FAIL", None: ""}


def rotated(items: list[T], i: int) -> list[T]:
    """The contenders in round `i`'s order: each takes its turn first (interleaving evens out drift)."""
    k = i % len(items)
    return items[k:] + items[:k]


def print_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> None:
    table = [tuple(header), *(tuple(line) for line in lines)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def vm_hwm_mb(pid: int) -> float:
    """A process's peak resident set (VmHWM), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a command: wall seconds, its CPU seconds (children included) and its output; fails loudly."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{output[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, output


def cgroup_cpus(pid: int) -> float:
    """The CPU quota of the process's cgroup in CPUs (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`), 0 if none."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        _, controllers, path = line.split(":", 2)
        try:
            if controllers == "":
                quota, period = (Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.max").read_text().split()
            elif "cpu" in controllers.split(","):
                base = Path("/sys/fs/cgroup") / controllers / path.lstrip("/")
                quota = (base / "cpu.cfs_quota_us").read_text().strip()
                period = (base / "cpu.cfs_period_us").read_text().strip()
            else:
                continue
        except (OSError, ValueError):
            continue
        if quota not in ("max", "-1"):
            return int(quota) / int(period)
    return 0.0


class ProcessSampler:
    """Polls a process's VmHWM and CPU time until it exits or the block ends. VmHWM only grows and CPU time
    too, so the last readings are the totals to within the polling interval."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_mb = 0.0
        self.cpu = 0.0
        self._start = cpu_seconds(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            hwm, cpu = vm_hwm_mb(self.pid), cpu_seconds(self.pid)
            if hwm == 0.0:
                return
            self.peak_mb = max(self.peak_mb, hwm)
            self.cpu = max(self.cpu, cpu - self._start)
