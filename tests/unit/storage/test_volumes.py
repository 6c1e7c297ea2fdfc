"""Block and directory volumes: sparse files, loop devices (attach, re-attach, resize, detach), deletion, errors."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pycdi.cluster.storage import (
    BlockDevice,
    StorageError,
    attach_block_volume,
    create_block_volume,
    create_directory_volume,
    delete_volume,
    detach_block_volume,
    loop_devices_available,
    loopdev,
    resize_block_volume,
)
from pycdi.cluster.storage.fsinfo import allocated_bytes
from pycdi.cluster.storage.volumes import BLOCK_KIND_ENV
from tests.unit.storage.files import MiB, needs_loop, read_at


def device_size(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def write_at(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_directory_volume(tmp_path: Path) -> None:
    create_directory_volume(tmp_path / "pool" / "pvc-1")
    create_directory_volume(tmp_path / "pool" / "pvc-1")  # idempotent
    assert (tmp_path / "pool" / "pvc-1").is_dir()
    (tmp_path / "file").touch()
    with pytest.raises(StorageError) as info:
        create_directory_volume(tmp_path / "file")
    assert info.value.errno == errno.EEXIST


def test_file_kind_block_volume(tmp_path: Path) -> None:
    backing = tmp_path / "vol" / "disk.img"
    device = create_block_volume(backing, 1000, kind="file")
    assert device == BlockDevice(backing, backing, "file")
    assert os.stat(backing).st_size == 1024  # whole sectors
    assert allocated_bytes(backing) == 0
    write_at(backing, 0, b"kept")
    assert create_block_volume(backing, 1000, kind="file") == device  # retry keeps the data
    assert backing.read_bytes()[:4] == b"kept"
    grown = resize_block_volume(device, 10 * MiB)
    assert grown == device and os.stat(backing).st_size == 10 * MiB
    with pytest.raises(StorageError) as info:
        resize_block_volume(device, MiB)
    assert info.value.errno == errno.EINVAL
    detach_block_volume(device)  # nothing to detach
    delete_volume(backing)
    assert not backing.exists()


def test_file_kind_forced_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_KIND_ENV, "file")
    assert not loop_devices_available()
    device = create_block_volume(tmp_path / "disk.img", MiB)
    assert device.kind == "file" and device.path == tmp_path / "disk.img"
    assert attach_block_volume(tmp_path / "disk.img").kind == "file"


def test_invalid_sizes_and_paths(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as info:
        create_block_volume(tmp_path / "disk.img", 0, kind="file")
    assert info.value.errno == errno.EINVAL
    with pytest.raises(StorageError) as info:
        attach_block_volume(tmp_path / "missing.img", kind="file")
    assert info.value.errno == errno.ENOENT and "missing.img" in str(info.value)
    (tmp_path / "dir.img").mkdir()
    with pytest.raises(StorageError):
        create_block_volume(tmp_path / "dir.img", MiB, kind="file")


def test_loop_volume_lifecycle(tmp_path: Path) -> None:
    needs_loop()
    backing = tmp_path / "disk.img"
    device = create_block_volume(backing, 64 * MiB)
    try:
        assert device.kind == "loop" and loopdev.is_loop_device(device.path)
        assert loopdev.backing_file(device.path) == backing.resolve()
        assert device_size(device.path) == 64 * MiB
        write_at(device.path, 5 * MiB, b"through the device")
        assert read_at(backing, 5 * MiB, 18) == b"through the device"
        assert allocated_bytes(backing) <= MiB  # still sparse
        # After a restart: the same device is found again, not a second one.
        assert attach_block_volume(backing) == device
        assert create_block_volume(backing, 64 * MiB) == device
        assert loopdev.find(backing) == [device.path]
        grown = resize_block_volume(device, 128 * MiB)
        assert grown == device and device_size(device.path) == 128 * MiB
        detach_block_volume(device)
        assert loopdev.find(backing) == []
        again = attach_block_volume(backing)
        assert read_at(again.path, 5 * MiB, 18) == b"through the device"
        detach_block_volume(again)
    finally:
        for dev in loopdev.find(backing):
            loopdev.detach(dev)


def test_detach_of_a_stale_record_leaves_the_new_owner_alone(tmp_path: Path) -> None:
    needs_loop()
    first = create_block_volume(tmp_path / "a.img", MiB)
    detach_block_volume(first)
    second = create_block_volume(tmp_path / "b.img", MiB)  # may well get first's device number
    try:
        detach_block_volume(first)
        assert loopdev.find(tmp_path / "b.img") == [second.path]
    finally:
        detach_block_volume(second)


def test_resize_reattaches_a_detached_volume(tmp_path: Path) -> None:
    needs_loop()
    device = create_block_volume(tmp_path / "a.img", MiB)
    detach_block_volume(device)
    grown = resize_block_volume(device, 2 * MiB)
    try:
        assert grown.kind == "loop" and device_size(grown.path) == 2 * MiB
    finally:
        detach_block_volume(grown)


def test_delete_volume_detaches_loops(tmp_path: Path) -> None:
    needs_loop()
    one = create_block_volume(tmp_path / "one.img", MiB)
    delete_volume(tmp_path / "one.img")
    assert not (tmp_path / "one.img").exists() and loopdev.find(tmp_path / "one.img") == []
    assert loopdev.backing_file(one.path) != tmp_path / "one.img"
    two = create_block_volume(tmp_path / "two.img", MiB)
    delete_volume(two.path)  # by device path: detached, and its backing file removed
    assert not (tmp_path / "two.img").exists()


def test_delete_directory_volume(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    (vol / "ro" / "deep").mkdir(parents=True)
    (vol / "ro" / "deep" / "f").write_text("x")
    os.symlink("/etc", vol / "link-out")  # must not be followed
    os.chmod(vol / "ro" / "deep", 0o555)
    os.chmod(vol / "ro", 0o555)
    delete_volume(vol)
    assert not vol.exists()
    assert Path("/etc").is_dir()
    delete_volume(vol)  # already gone: fine


def test_loop_kind_required_but_unavailable(tmp_path: Path) -> None:
    if loopdev.available():
        pytest.skip("loop devices are available here")
    with pytest.raises(StorageError):
        create_block_volume(tmp_path / "disk.img", MiB, kind="loop")
