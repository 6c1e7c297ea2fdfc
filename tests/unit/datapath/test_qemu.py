"""qemu-img inspection and validation on real images, limits, progress parsing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pycdi.datapath import exec as tools
from pycdi.datapath import qemu, sparse
from pycdi.datapath.errors import PermanentError

from .conftest import MiB, qemu_img


def test_info_reads_real_qcow2(qcow2_image: Path) -> None:
    info = qemu.info(str(qcow2_image))
    assert info.format == "qcow2"
    assert info.virtual_size == 8 * MiB
    assert info.backing_filename is None and info.data_file is None
    qemu.validate(info, 8 * MiB, "src")


def test_too_large_states_both_numbers(qcow2_image: Path) -> None:
    info = qemu.info(str(qcow2_image), fmt="qcow2")
    with pytest.raises(qemu.LargerPVCRequired) as err:
        qemu.validate(info, 4 * MiB, "src")
    assert str(err.value) == (
        "virtual image size 8388608 is larger than the reported available storage 4194304. A larger PVC is required"
    )


def test_backing_file_refused(tmp_path: Path, qcow2_image: Path) -> None:
    overlay = tmp_path / "overlay.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", str(qcow2_image), "-F", "qcow2", str(overlay))
    with pytest.raises(PermanentError, match=f"is invalid because it has backing file {qcow2_image}"):
        qemu.validate(qemu.info(str(overlay)), 1 << 40, str(overlay))


def test_external_data_file_refused(tmp_path: Path) -> None:
    img = tmp_path / "ext.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'ext.data'}", str(img), "8M")
    with pytest.raises(PermanentError, match="is invalid because it has an external data file"):
        qemu.validate(qemu.info(str(img)), 1 << 40, str(img))


def test_corrupt_qcow2_is_a_permanent_error(tmp_path: Path, qcow2_image: Path) -> None:
    bad = tmp_path / "bad.qcow2"
    data = bytearray(qcow2_image.read_bytes()[:4096])
    data[36:40] = (0x7FFFFFFF).to_bytes(4, "big")  # an absurd L1 table size
    bad.write_bytes(bytes(data))
    with pytest.raises(PermanentError, match="Unable to inspect image .*Active L1 table too large"):
        qemu.info(str(bad), fmt="qcow2")
    data[36:40] = qcow2_image.read_bytes()[36:40]
    data[24:32] = (1 << 62).to_bytes(8, "big")  # a header claiming an absurd virtual size
    bad.write_bytes(bytes(data))
    with pytest.raises(PermanentError, match="Image is too big"):
        qemu.info(str(bad), fmt="qcow2")


def test_unsupported_format_refused() -> None:
    with pytest.raises(PermanentError, match="Invalid format luks for image x"):
        qemu.validate(qemu.ImageInfo("luks", 1, 1, None, None), 10, "x")


def test_info_limits_apply_in_child() -> None:
    code = "import resource as r; print(r.getrlimit(r.RLIMIT_AS)[0], r.getrlimit(r.RLIMIT_CPU)[0])"
    out = tools.run([sys.executable, "-c", code], limits=tools.INFO_LIMITS)
    assert out.split() == [str(1 << 30), "30"]


def test_limits_stop_a_memory_hog() -> None:
    with pytest.raises(tools.CommandError):
        tools.run([sys.executable, "-c", "x = bytearray(2 << 30)"], limits=tools.INFO_LIMITS)


def test_progress_parsing_on_carriage_returns() -> None:
    values, tail = tools.parse_progress(b"    (0.00/100%)\r    (12.50/100%)\r    (99.9")
    assert values == [0.0, 12.5]
    assert tail == b"    (99.9"
    values, tail = tools.parse_progress(tail + b"9/100%)\r")
    assert values == [99.99] and tail == b""


def test_convert_reports_progress_and_resize(tmp_path: Path, qcow2_image: Path, raw_image: tuple[Path, bytes]) -> None:
    out = tmp_path / "disk.img"
    seen: list[float] = []
    qemu.convert(str(qcow2_image), str(out), src_format="qcow2", progress=seen.append)
    assert out.read_bytes() == raw_image[1]
    assert seen and seen[-1] == 100.0
    qemu.resize(str(out), 16 * MiB)
    assert out.stat().st_size == 16 * MiB


def test_convert_failure_removes_target(tmp_path: Path) -> None:
    bad = tmp_path / "bad.qcow2"
    bad.write_bytes(b"QFI\xfb" + bytes(100))
    out = tmp_path / "disk.img"
    with pytest.raises(PermanentError, match="could not convert image to raw"):
        qemu.convert(str(bad), str(out), src_format="qcow2")
    assert not out.exists()


def test_create_blank_is_sparse(tmp_path: Path) -> None:
    out = tmp_path / "disk.img"
    qemu.create_blank(str(out), 64 * MiB)
    st = out.stat()
    assert st.st_size == 64 * MiB and st.st_blocks * 512 < MiB
    assert oct(st.st_mode & 0o777) == "0o660"
    assert subprocess.run(["qemu-img", "info", str(out)], capture_output=True).returncode == 0


def test_cache_mode_is_direct_on_local_disks_and_where_asked(tmp_path: Path) -> None:
    target = str(tmp_path / "disk.img")
    local = sparse.direct_writes_suit(target)
    assert qemu.cache_mode(target, try_none=False) == ("none" if local else "writeback")
    assert qemu.cache_mode(target, try_none=True) == "none"  # ext4 and tmpfs both take O_DIRECT here
    shm = Path("/dev/shm")
    if shm.is_dir():
        assert qemu.cache_mode(str(shm / f"pycdi-{tmp_path.name}.img"), try_none=False) == "writeback"


def test_a_direct_convert_gives_the_same_bytes(tmp_path: Path, qcow2_image: Path,
                                               raw_image: tuple[Path, bytes]) -> None:
    out = tmp_path / "out.img"
    qemu.convert(str(qcow2_image), str(out), src_format="qcow2")
    assert out.read_bytes() == raw_image[1]
