"""Tar extraction never writes, links or creates anything outside the volume."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from pycdi.datapath.archive import UnsafeArchive, extract
from pycdi.datapath.errors import PermanentError


def make_tar(entries: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info in entries:
            body = (data or {}).get(info.name)
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    root = tmp_path / "volume"
    root.mkdir()
    return root


def outside_untouched(tmp_path: Path) -> set[str]:
    return {p.name for p in tmp_path.iterdir()}


def test_good_archive_extracts(volume: Path) -> None:
    tar = make_tar(
        [entry("dir", tarfile.DIRTYPE), entry("dir/a.txt"), entry("dir/link", tarfile.SYMTYPE, "a.txt"),
         entry("hard", tarfile.LNKTYPE, "dir/a.txt")],
        {"dir/a.txt": b"hello"},
    )  # fmt: skip
    assert extract(io.BytesIO(tar), str(volume), 1 << 20) == 5
    assert (volume / "dir/a.txt").read_bytes() == b"hello"
    assert (volume / "dir/link").read_bytes() == b"hello"
    assert (volume / "hard").read_bytes() == b"hello"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([entry("../escape.txt")], "escapes the volume with '..'"),
        ([entry("a/../../escape.txt")], "escapes the volume with '..'"),
        ([entry("/tmp/abs.txt")], "has an absolute path"),
        ([entry("out", tarfile.SYMTYPE, "/etc")], "is a link pointing out of the volume"),
        ([entry("out", tarfile.SYMTYPE, "../..")], "is a link pointing out of the volume"),
        ([entry("hard", tarfile.LNKTYPE, "/etc/passwd")], "has an absolute path"),
        ([entry("hard", tarfile.LNKTYPE, "../outside.txt")], "escapes the volume"),
        ([entry("dev", tarfile.CHRTYPE)], "is a device, fifo or other special file"),
        ([entry("fifo", tarfile.FIFOTYPE)], "is a device, fifo or other special file"),
    ],
)
def test_unsafe_members_refused(tmp_path: Path, volume: Path, entries: list[tarfile.TarInfo], message: str) -> None:
    (tmp_path / "outside.txt").write_bytes(b"secret")
    before = outside_untouched(tmp_path)
    with pytest.raises(UnsafeArchive, match=message):
        tar = make_tar(entries, {"../escape.txt": b"x", "a/../../escape.txt": b"x"})
        extract(io.BytesIO(tar), str(volume), 1 << 20)
    assert outside_untouched(tmp_path) == before
    assert (tmp_path / "outside.txt").read_bytes() == b"secret"


def test_write_through_planted_link_refused(tmp_path: Path, volume: Path) -> None:
    # A link made by an earlier member cannot be used by a later one, even one that looks harmless.
    os.symlink(str(tmp_path), volume / "sneaky")
    tar = make_tar([entry("sneaky/escape.txt")], {"sneaky/escape.txt": b"x"})
    with pytest.raises(UnsafeArchive, match="outside the volume through a link"):
        extract(io.BytesIO(tar), str(volume), 1 << 20)
    assert not (tmp_path / "escape.txt").exists()


def test_archive_larger_than_volume(volume: Path) -> None:
    tar = make_tar([entry("big")], {"big": bytes(4096)})
    with pytest.raises(PermanentError, match="A larger PVC is required"):
        extract(io.BytesIO(tar), str(volume), 1000)


def test_not_a_tar(volume: Path) -> None:
    with pytest.raises(PermanentError, match="tar"):
        extract(io.BytesIO(b"hello world" * 100), str(volume), 1 << 20)
