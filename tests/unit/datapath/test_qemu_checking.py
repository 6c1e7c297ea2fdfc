"""`qemu-img check` alongside the convert: its verdict is the error told; a good image converts unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycdi.datapath import qemu
from pycdi.datapath.errors import PermanentError


def test_check_runs_alongside_a_good_convert(tmp_path: Path, qcow2_image: Path, raw_image: tuple[Path, bytes]) -> None:
    out = tmp_path / "disk.img"
    with qemu.checking(str(qcow2_image), "qcow2", "src"):
        qemu.convert(str(qcow2_image), str(out), src_format="qcow2")
    assert out.read_bytes() == raw_image[1]


def test_a_truncated_image_is_reported_by_the_check(tmp_path: Path, qcow2_image: Path) -> None:
    whole = qcow2_image.read_bytes()
    truncated = tmp_path / "truncated.qcow2"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(PermanentError, match="truncated.qcow2 is corrupt or truncated"):
        with qemu.checking(str(truncated), "qcow2", "truncated.qcow2"):
            qemu.convert(str(truncated), str(tmp_path / "disk.img"), src_format="qcow2")


def test_the_check_fails_a_convert_that_succeeded(tmp_path: Path, qcow2_image: Path) -> None:
    whole = qcow2_image.read_bytes()
    truncated = tmp_path / "truncated.qcow2"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(PermanentError, match="is corrupt or truncated"):
        with qemu.checking(str(truncated), "qcow2", "truncated.qcow2"):
            pass  # whatever the block did, a failed check is an error
