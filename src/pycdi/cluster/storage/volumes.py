"""Volumes on this machine: directories (Filesystem), sparse files behind loop devices when allowed (Block)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from pycdi.cluster.storage import loopdev
from pycdi.cluster.storage.errors import StorageError

#: Set to "file" to make Block volumes plain sparse files even where loop devices are available (tests,
#: or hosts where loop devices are a scarce shared resource); "loop" to insist on loop devices.
BLOCK_KIND_ENV = "PYCDI_BLOCK_KIND"
SECTOR = 512

Kind = Literal["auto", "loop", "file"]


@dataclass(frozen=True)
class BlockDevice:
    """A Block volume: `path` is what a pod's volumeDevice maps to (/dev/loopN, or the file itself for kind
    "file"), `backing` the sparse file that holds the bytes."""

    path: Path
    backing: Path
    kind: Literal["loop", "file"]


def loop_devices_available() -> bool:
    """Whether Block volumes get loop devices: root, a usable /dev/loop-control, and not PYCDI_BLOCK_KIND=file."""
    if os.environ.get(BLOCK_KIND_ENV, "").lower() == "file":
        return False
    return loopdev.available()


def _use_loop(kind: Kind) -> bool:
    if kind == "auto":
        env = os.environ.get(BLOCK_KIND_ENV, "").lower()
        kind = "loop" if env == "loop" else "file" if env == "file" else "auto"
    if kind == "file":
        return False
    if kind == "loop":
        if not loopdev.available():
            raise StorageError("loop devices are not available (needs root and /dev/loop-control)",
                               loopdev.LOOP_CONTROL, errno.EPERM)
        return True
    return loopdev.available()


def create_directory_volume(path: Path) -> None:
    """Make the directory of a Filesystem volume (and its parents); an existing directory is fine."""
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError as e:
        raise StorageError("exists and is not a directory", path, errno.EEXIST) from e
    except OSError as e:
        raise StorageError.from_os("cannot create the volume directory", path, e) from e


def _round_up(size_bytes: int) -> int:
    # A loop device exposes whole 512-byte sectors; a file of another size would lose its tail.
    return -(-size_bytes // SECTOR) * SECTOR


def create_block_volume(backing: Path, size_bytes: int, *, kind: Kind = "auto") -> BlockDevice:
    """Make (or reuse) a sparse backing file of at least size_bytes and attach it (see attach_block_volume).

    Idempotent: an existing backing file keeps its data and is only grown, and an existing loop device
    for it is reused, so a provisioner may simply retry.
    """
    if size_bytes <= 0:
        raise StorageError(f"invalid size {size_bytes} for a block volume", backing, errno.EINVAL)
    size = _round_up(size_bytes)
    try:
        backing.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(backing, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StorageError("the backing path is not a regular file", backing, errno.EINVAL)
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)  # sparse: no block is allocated until written
        finally:
            os.close(fd)
    except OSError as e:
        raise StorageError.from_os("cannot create the block volume file", backing, e) from e
    return attach_block_volume(backing, kind=kind)


def attach_block_volume(backing: Path, *, kind: Kind = "auto") -> BlockDevice:
    """The device for a backing file: its existing loop device if one is attached (after a restart), else a
    new one where loop devices are available, else the file itself (kind "file")."""
    try:
        st = os.stat(backing)
    except OSError as e:
        raise StorageError.from_os("cannot find the block volume file", backing, e) from e
    if not stat.S_ISREG(st.st_mode):
        raise StorageError("the backing path is not a regular file", backing, errno.EINVAL)
    backing = Path(os.path.realpath(backing))
    if not _use_loop(kind):
        return BlockDevice(backing, backing, "file")
    existing = loopdev.find(backing)
    device = existing[0] if existing else loopdev.attach(backing)
    return BlockDevice(device, backing, "loop")


def detach_block_volume(device: BlockDevice) -> None:
    """Detach the loop device (only if it still serves this backing file); nothing to do for kind "file"."""
    if device.kind == "loop":
        loopdev.detach(device.path, expected_backing=device.backing)


def resize_block_volume(device: BlockDevice, size_bytes: int) -> BlockDevice:
    """Grow the backing file to size_bytes (sparse) and make the loop device see it. Shrinking is refused,
    as Kubernetes refuses to shrink a claim."""
    size = _round_up(size_bytes)
    try:
        current = os.stat(device.backing).st_size
        if size < current:
            raise StorageError(f"cannot shrink a block volume from {current} to {size} bytes",
                               device.backing, errno.EINVAL)
        if size > current:
            os.truncate(device.backing, size)
    except OSError as e:
        raise StorageError.from_os("cannot resize the block volume file", device.backing, e) from e
    if device.kind == "loop":
        if loopdev.backing_file(device.path) is None:
            return attach_block_volume(device.backing, kind="loop")  # detached meanwhile: attach afresh
        loopdev.refresh_capacity(device.path)
    return device


def _make_writable(func: Callable[..., Any], path: str, exc_info: tuple[type[BaseException], BaseException,
                                                                       TracebackType]) -> None:
    # rmtree hook: a read-only directory (chmod 0555 by a workload) still has to go.
    exc = exc_info[1]
    if isinstance(exc, PermissionError):
        parent = os.path.dirname(path)
        os.chmod(parent, stat.S_IMODE(os.stat(parent).st_mode) | stat.S_IWUSR | stat.S_IXUSR)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=_make_writable)
        else:
            os.unlink(path)
        return
    raise exc


def delete_volume(path: Path) -> None:
    """Remove a volume: a directory tree, or a block volume's backing file after detaching every loop device
    on it; given a loop device path, detach it and remove its backing file. A missing path is fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise StorageError.from_os("cannot inspect the volume", path, e) from e
    if stat.S_ISBLK(st.st_mode) and loopdev.is_loop_device(path):
        backing = loopdev.backing_file(path)
        loopdev.detach(path)
        if backing is not None:
            delete_volume(backing)
        return
    try:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path, onerror=_make_writable)
            return
        if stat.S_ISREG(st.st_mode):
            for device in loopdev.find(path):
                loopdev.detach(device, expected_backing=path)
        os.unlink(path)
    except OSError as e:
        raise StorageError.from_os("cannot delete the volume", path, e) from e
