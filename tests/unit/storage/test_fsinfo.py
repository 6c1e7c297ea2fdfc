"""fsinfo: data extents and holes, mount lookup (with escaped mount points), allocated space."""

from __future__ import annotations

import os
from pathlib import Path

from pycdi.cluster.storage.fsinfo import (
    allocated_bytes,
    data_extents,
    filesystem_type,
    mount_of,
    range_is_hole,
)
from pycdi.mounts import unescape
from tests.unit.storage.files import MiB, write_sparse


def test_data_extents_and_holes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_sparse(path, 16 * MiB, {2 * MiB: b"x" * MiB, 8 * MiB: b"y" * 4096})
    fd = os.open(path, os.O_RDONLY)
    try:
        assert list(data_extents(fd, 0, 16 * MiB)) == [(2 * MiB, MiB), (8 * MiB, 4096)]
        assert list(data_extents(fd, 2 * MiB + 10, 8 * MiB + 100)) == [(2 * MiB + 10, MiB - 10), (8 * MiB, 100)]
        assert list(data_extents(fd, 9 * MiB, 16 * MiB)) == []
        assert range_is_hole(fd, 4 * MiB, 4 * MiB)
        assert not range_is_hole(fd, 4 * MiB, 4 * MiB + 1)
        assert range_is_hole(fd, 12 * MiB, MiB)
    finally:
        os.close(fd)
    assert allocated_bytes(path) == MiB + 4096


def test_mount_lookup(tmp_path: Path) -> None:
    point, fstype, _ = mount_of(tmp_path)
    assert str(tmp_path).startswith(str(point))
    assert filesystem_type(tmp_path) == fstype != "unknown"
    assert mount_of(Path("/proc/self"))[1] == "proc"
    assert unescape(r"/mnt/with\040space\134x") == "/mnt/with space\\x"
