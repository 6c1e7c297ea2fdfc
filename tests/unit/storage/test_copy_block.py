"""copy_block: files and loop devices in every combination, sparse targets, stale target data zeroed, reflink on XFS."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pycdi.cluster.storage import StorageError, copy_block, create_block_volume, detach_block_volume
from pycdi.cluster.storage.fsinfo import allocated_bytes, filesystem_used_bytes
from pycdi.cluster.storage.volumes import BlockDevice
from tests.support.files import fsync_path
from tests.unit.storage.files import MiB, digest, needs_loop, pattern, read_at, write_sparse

SIZE = 48 * MiB
DATA = {0: pattern(MiB, 1), 7 * MiB + 4096: pattern(3 * MiB, 2), SIZE - MiB: pattern(MiB, 3)}
DATA_BYTES = 5 * MiB


def source_file(path: Path) -> Path:
    write_sparse(path, SIZE, DATA)
    fsync_path(path)
    return path


def loop_volume(backing: Path, size: int = SIZE, data: dict[int, bytes] | None = None) -> BlockDevice:
    if data is not None:
        write_sparse(backing, size, data)
    return create_block_volume(backing, size, kind="loop")


def test_file_to_file_keeps_a_larger_target(tmp_path: Path) -> None:
    src = source_file(tmp_path / "src.img")
    dst = tmp_path / "dst.img"
    write_sparse(dst, 2 * SIZE, {SIZE + MiB: b"old tail"})
    result = copy_block(src, dst)
    assert result.method in ("sparse", "reflink")
    assert os.stat(dst).st_size == 2 * SIZE
    assert digest(dst, SIZE) == digest(src)
    assert read_at(dst, SIZE + MiB, 8) == bytes(8)  # the target holds the source followed by zeros
    assert allocated_bytes(dst) <= allocated_bytes(src) * 101 // 100


def test_file_to_new_file(tmp_path: Path) -> None:
    src = source_file(tmp_path / "src.img")
    copy_block(src, tmp_path / "new.img")
    assert digest(tmp_path / "new.img") == digest(src)


def test_file_to_loop_device_stays_sparse(tmp_path: Path) -> None:
    needs_loop()
    src = source_file(tmp_path / "src.img")
    dst = loop_volume(tmp_path / "dst.img")
    try:
        result = copy_block(src, dst.path)
        assert result.method == "sparse"
        assert result.bytes_copied == DATA_BYTES
        assert digest(dst.path) == digest(src)
    finally:
        detach_block_volume(dst)
    assert digest(tmp_path / "dst.img") == digest(src)
    assert allocated_bytes(tmp_path / "dst.img") <= allocated_bytes(src) * 101 // 100


def test_loop_to_loop_zeroes_stale_target_data(tmp_path: Path) -> None:
    needs_loop()
    src = loop_volume(tmp_path / "src.img", data=DATA)
    # The target already holds data where the source has a hole, and where the source has zeros.
    dst = loop_volume(tmp_path / "dst.img", SIZE + MiB, {20 * MiB: pattern(2 * MiB, 9), SIZE: b"tail"})
    try:
        result = copy_block(src.path, dst.path)
        assert result.method == "sparse"
        assert read_at(dst.path, 20 * MiB, 2 * MiB) == bytes(2 * MiB)
        assert read_at(dst.path, SIZE, 4) == bytes(4)
        assert digest(dst.path, SIZE) == digest(src.path)
    finally:
        detach_block_volume(src)
        detach_block_volume(dst)
    assert allocated_bytes(tmp_path / "dst.img") <= 10 * MiB


def test_loop_to_file(tmp_path: Path) -> None:
    needs_loop()
    src = loop_volume(tmp_path / "src.img", data=DATA)
    try:
        result = copy_block(src.path, tmp_path / "out.img")
    finally:
        detach_block_volume(src)
    assert result.method in ("sparse", "reflink")
    assert digest(tmp_path / "out.img") == digest(tmp_path / "src.img")
    assert allocated_bytes(tmp_path / "out.img") <= allocated_bytes(tmp_path / "src.img") * 101 // 100


def test_loop_to_loop_on_xfs_reflinks(xfs_mount: Path) -> None:
    needs_loop()
    src = loop_volume(xfs_mount / "bsrc.img", data=DATA)
    dst = loop_volume(xfs_mount / "bdst.img", SIZE + MiB, {SIZE: b"tail"})
    try:
        os.sync()
        used = filesystem_used_bytes(xfs_mount)
        result = copy_block(src.path, dst.path)
        os.sync()
        assert result.method == "reflink"
        assert filesystem_used_bytes(xfs_mount) - used < 2 * MiB
        assert digest(dst.path, SIZE) == digest(src.path)
        assert read_at(dst.path, SIZE, 4) == bytes(4)
        fd = os.open(dst.path, os.O_RDONLY)
        try:
            assert os.lseek(fd, 0, os.SEEK_END) == SIZE + MiB
        finally:
            os.close(fd)
    finally:
        detach_block_volume(src)
        detach_block_volume(dst)


def test_target_smaller_than_source(tmp_path: Path) -> None:
    needs_loop()
    src = source_file(tmp_path / "src.img")
    dst = loop_volume(tmp_path / "small.img", SIZE // 2)
    try:
        with pytest.raises(StorageError) as info:
            copy_block(src, dst.path)
        assert info.value.errno == errno.ENOSPC and info.value.path == dst.path
    finally:
        detach_block_volume(dst)


def test_neither_file_nor_block_device(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as info:
        copy_block(Path("/dev/null"), tmp_path / "out.img")
    assert info.value.errno == errno.EINVAL and info.value.path == Path("/dev/null")
    with pytest.raises(StorageError) as info:
        copy_block(tmp_path / "missing.img", tmp_path / "out.img")
    assert info.value.errno == errno.ENOENT
