"""The single seam for running qemu-img and nbdkit: argv, resource limits, progress parsing."""

from __future__ import annotations

import os
import re
import resource
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import PermanentError, TransientError

#: Limits for `qemu-img info` on untrusted images (the values upstream CDI took from OpenStack Nova):
#: a crafted header must not make the inspection eat memory or CPU.
INFO_ADDRESS_SPACE = 1 << 30
INFO_CPU_SECONDS = 30
INFO_TIMEOUT_SECONDS = 30.0

_PROGRESS = re.compile(rb"\((\d{1,3}\.\d{2})/100%\)")


@dataclass(frozen=True)
class Limits:
    """Resource limits applied in the child before exec."""

    address_space: int | None = None
    cpu_seconds: int | None = None

    def apply(self) -> None:
        """Runs in the forked child (preexec_fn): must only make syscalls."""
        if self.address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (self.address_space, self.address_space))
        if self.cpu_seconds is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds))


INFO_LIMITS = Limits(address_space=INFO_ADDRESS_SPACE, cpu_seconds=INFO_CPU_SECONDS)


class CommandError(PermanentError):
    """A tool exited non-zero; `stderr` keeps its own words for the message."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(self.stderr or f"{argv[0]} exited with status {returncode}")


def run(argv: Sequence[str], *, limits: Limits | None = None, timeout: float | None = None) -> str:
    """Run a tool to completion and return its stdout; raise CommandError with its stderr on failure."""
    preexec = limits.apply if limits is not None else None
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, timeout=timeout, preexec_fn=preexec, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as err:
        raise TransientError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} timed out after {timeout}s") from err
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc.stdout.decode(errors="replace")


def parse_progress(buffer: bytes) -> tuple[list[float], bytes]:
    """Percentages found in `qemu-img -p` output and the unterminated tail to keep for the next read.

    qemu-img separates its progress lines with '\\r' (a terminal redraw), not '\\n'.
    """
    parts = re.split(rb"[\r\n]", buffer)
    tail = parts.pop()
    values = [float(m.group(1)) for part in parts for m in _PROGRESS.finditer(part)]
    return values, tail


def run_with_progress(
    argv: Sequence[str], on_progress: Callable[[float], None], *, limits: Limits | None = None
) -> None:
    """Run a tool that prints `(NN.NN/100%)` progress on stdout, reporting each value; CommandError on failure."""
    preexec = limits.apply if limits is not None else None
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=preexec
    )
    assert proc.stdout is not None and proc.stderr is not None
    tail = b""
    try:
        while True:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            values, tail = parse_progress(tail + chunk)
            for value in values:
                on_progress(value)
        # stderr is small (error text); read after stdout closes so the pipe cannot fill while we wait.
        stderr = proc.stderr.read()
    finally:
        proc.wait()
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, stderr.decode(errors="replace"))
