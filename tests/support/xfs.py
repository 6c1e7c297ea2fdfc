"""A loop-mounted XFS with reflink in a temporary directory, for tests and benchmarks of the reflink path."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pycdi.cluster.storage import loopdev

DEFAULT_SIZE = 1 << 30  # sparse; mkfs.xfs refuses filesystems under 300 MB


class XfsUnavailable(Exception):
    """This machine cannot make the filesystem; the message says precisely why."""


def unavailable_reason() -> str | None:
    """Why a loop-mounted XFS cannot be made here, or None when it can (as far as can be told in advance)."""
    if os.geteuid() != 0:
        return f"a loop-mounted XFS needs root (running as uid {os.geteuid()})"
    if not loopdev.available():
        return f"{loopdev.LOOP_CONTROL} is missing or cannot be opened read-write, so no loop device can be made"
    for tool in ("mkfs.xfs", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (xfsprogs / util-linux; `make setup` installs them)"
    return None


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


@contextmanager
def xfs_filesystem(workdir: Path, size_bytes: int = DEFAULT_SIZE) -> Iterator[Path]:
    """Make a sparse image in workdir, mkfs.xfs -m reflink=1 it, attach it to a loop device and mount it at
    workdir/mnt; yield the mount point; unmount it and detach the device this created (by its path)."""
    reason = unavailable_reason()
    if reason:
        raise XfsUnavailable(reason)
    image, mnt = workdir / "xfs.img", workdir / "mnt"
    with open(image, "wb") as f:
        f.truncate(size_bytes)
    made = _run(["mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(image)])
    if made.returncode != 0:
        image.unlink()
        raise XfsUnavailable(f"mkfs.xfs -m reflink=1 failed: {made.stderr.strip()}")
    device = loopdev.attach(image)
    try:
        mnt.mkdir(exist_ok=True)
        mounted = _run(["mount", "-t", "xfs", str(device), str(mnt)])
        if mounted.returncode != 0:
            raise XfsUnavailable(f"mount -t xfs {device} failed: {mounted.stderr.strip()}")
        try:
            yield mnt
        finally:
            if _run(["umount", str(mnt)]).returncode != 0:
                _run(["umount", "-l", str(mnt)])  # still busy: detach lazily, the device goes when released
    finally:
        loopdev.detach(device, expected_backing=image)
        image.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def xfs_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The mount point of a fresh 1 GiB (sparse) XFS with reflink, shared by a test module; skips with the reason
    when this machine cannot make one."""
    workdir = tmp_path_factory.mktemp("xfs")
    try:
        filesystem = xfs_filesystem(workdir)
        mnt = filesystem.__enter__()
    except XfsUnavailable as e:
        pytest.skip(str(e))
    try:
        yield mnt
    finally:
        filesystem.__exit__(None, None, None)
