"""copy_file and copy_tree: reflink on XFS (extents shared), sparse copy on the tmp filesystem (holes kept), errors."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from pycdi.cluster.storage import StorageError, copy_file, copy_tree
from pycdi.cluster.storage.fsinfo import (
    allocated_bytes,
    data_extents,
    filesystem_type,
    filesystem_used_bytes,
    supports_reflink,
)
from tests.support.files import fsync_path
from tests.unit.storage.files import MiB, digest, pattern, write_sparse


def extents(path: Path) -> list[tuple[int, int]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return list(data_extents(fd, 0, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def sparse_source(path: Path) -> Path:
    """64 MiB with data at scattered offsets, a final partial block, and 1 MiB of zeros written explicitly
    (allocated, so it must stay allocated in the copy: allocation is compared, not just content)."""
    write_sparse(path, 64 * MiB + 123, {
        0: pattern(3 * MiB, 1),
        10 * MiB: pattern(MiB + 17, 2),
        20 * MiB: bytes(MiB),
        40 * MiB + 4096: pattern(5 * MiB, 3),
        64 * MiB: pattern(123, 4),
    })
    fsync_path(path)
    return path


def test_sparse_copy_keeps_holes_and_allocation(tmp_path: Path) -> None:
    if supports_reflink(tmp_path):
        pytest.skip("the temporary directory's filesystem reflinks; this test is for the sparse path")
    src = sparse_source(tmp_path / "src.img")
    result = copy_file(src, tmp_path / "dst.img")
    dst = tmp_path / "dst.img"
    assert result.method == "sparse"
    assert result.bytes_copied == sum(length for _, length in extents(src))
    assert os.stat(dst).st_size == os.stat(src).st_size
    assert digest(dst) == digest(src)
    assert extents(dst) == extents(src)
    assert abs(allocated_bytes(dst) - allocated_bytes(src)) <= allocated_bytes(src) // 100
    assert allocated_bytes(dst) < 16 * MiB  # a dense copy would be 64 MiB


def test_file_ending_in_a_hole_keeps_its_size(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_sparse(src, 50 * MiB, {MiB: b"abc"})
    copy_file(src, tmp_path / "dst")
    assert os.stat(tmp_path / "dst").st_size == 50 * MiB
    assert digest(tmp_path / "dst") == digest(src)
    assert allocated_bytes(tmp_path / "dst") <= 64 * 1024


def test_empty_and_all_hole_files(tmp_path: Path) -> None:
    (tmp_path / "empty").touch()
    assert copy_file(tmp_path / "empty", tmp_path / "e2").bytes_copied == 0
    write_sparse(tmp_path / "holes", 8 * MiB, {})
    result = copy_file(tmp_path / "holes", tmp_path / "h2")
    assert os.stat(tmp_path / "h2").st_size == 8 * MiB
    assert allocated_bytes(tmp_path / "h2") == 0
    assert result.bytes_copied == 0 or result.method == "reflink"


def test_overwrites_a_longer_target_and_keeps_mode(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    os.chmod(src, 0o640)
    dst.write_bytes(b"old content that is longer")
    copy_file(src, dst)
    assert dst.read_bytes() == b"new"
    os.unlink(dst)
    copy_file(src, dst)
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o640 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_reflink_on_xfs_shares_extents(xfs_mount: Path) -> None:
    src = xfs_mount / "reflink-src.img"
    write_sparse(src, 256 * MiB, {i * 8 * MiB: pattern(4 * MiB, i) for i in range(8)})  # 32 MiB of data
    fsync_path(src)
    os.sync()
    used_before = filesystem_used_bytes(xfs_mount)
    result = copy_file(src, xfs_mount / "reflink-dst.img")
    os.sync()
    grown = filesystem_used_bytes(xfs_mount) - used_before
    assert result.method == "reflink"
    assert result.bytes_copied == 256 * MiB
    assert grown < 2 * MiB, f"the filesystem grew by {grown} bytes: extents were copied, not shared"
    assert digest(xfs_mount / "reflink-dst.img") == digest(src)
    # The clone is independent: writing to it leaves the source alone (copy on write).
    with open(xfs_mount / "reflink-dst.img", "r+b") as f:
        f.write(b"changed")
    assert digest(xfs_mount / "reflink-dst.img") != digest(src)


def test_copy_from_xfs_to_another_filesystem_is_sparse(xfs_mount: Path, tmp_path: Path) -> None:
    src = sparse_source(xfs_mount / "cross-src.img")
    result = copy_file(src, tmp_path / "cross-dst.img")
    assert result.method == "sparse"
    assert digest(tmp_path / "cross-dst.img") == digest(src)
    assert allocated_bytes(tmp_path / "cross-dst.img") < 16 * MiB


def test_supports_reflink(xfs_mount: Path, tmp_path: Path) -> None:
    assert supports_reflink(xfs_mount)
    assert filesystem_type(xfs_mount) == "xfs"
    if filesystem_type(tmp_path) in ("ext4", "tmpfs"):
        assert not supports_reflink(tmp_path)


@pytest.mark.parametrize("case", ["missing source", "directory source", "missing target dir", "same file"])
def test_copy_file_errors(tmp_path: Path, case: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"data")
    expected = {"missing source": (tmp_path / "nope", dst, errno.ENOENT, tmp_path / "nope"),
                "directory source": (tmp_path, dst, errno.EINVAL, tmp_path),
                "missing target dir": (src, tmp_path / "no" / "dst", errno.ENOENT, tmp_path / "no" / "dst"),
                "same file": (src, src, errno.EINVAL, src)}[case]
    with pytest.raises(StorageError) as info:
        copy_file(expected[0], expected[1])
    assert info.value.errno == expected[2]
    assert info.value.path == expected[3]
    assert str(expected[3]) in str(info.value) and os.strerror(expected[2]) in str(info.value)


def make_tree(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    write_sparse(root / "a" / "disk.img", 32 * MiB, {4 * MiB: pattern(MiB, 7)})
    (root / "a" / "b" / "note.txt").write_text("hello")
    os.chmod(root / "a" / "b" / "note.txt", 0o600)
    os.link(root / "a" / "b" / "note.txt", root / "hard")
    os.symlink("a/b/note.txt", root / "link")
    os.symlink("/nowhere/at/all", root / "dangling")
    os.mkfifo(root / "fifo", 0o644)
    os.setxattr(root / "a" / "b" / "note.txt", "user.pycdi", b"yes")
    os.chmod(root / "a" / "b", 0o750)
    for p in (root / "a" / "b" / "note.txt", root / "a" / "b", root / "a"):
        os.utime(p, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    os.utime(root / "link", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000), follow_symlinks=False)


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            content: object = None
            if stat.S_ISREG(st.st_mode):
                content = (digest(p), st.st_size)
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            out[str(p.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode), st.st_mtime_ns, content, st.st_nlink)
    return out


def test_copy_tree_copies_everything(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    make_tree(src)
    dst.mkdir()  # an existing empty target is fine
    result = copy_tree(src, dst)
    assert snapshot(dst) == snapshot(src)
    assert os.stat(dst / "hard").st_ino == os.stat(dst / "a" / "b" / "note.txt").st_ino
    assert os.getxattr(dst / "a" / "b" / "note.txt", "user.pycdi") == b"yes"
    assert allocated_bytes(dst / "a" / "disk.img") < 4 * MiB
    assert result.method in ("sparse", "reflink")
    assert result.bytes_copied >= MiB


def test_copy_tree_on_xfs_reflinks(xfs_mount: Path) -> None:
    src, dst = xfs_mount / "tree-src", xfs_mount / "tree-dst"
    src.mkdir()
    make_tree(src)
    result = copy_tree(src, dst)
    assert result.method == "reflink"
    assert snapshot(dst) == snapshot(src)


def test_copy_tree_errors(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").touch()
    with pytest.raises(StorageError) as info:
        copy_tree(tmp_path / "src", tmp_path / "full")
    assert info.value.errno == errno.ENOTEMPTY and info.value.path == tmp_path / "full"
    with pytest.raises(StorageError) as info:
        copy_tree(tmp_path / "full" / "x", tmp_path / "t")
    assert info.value.errno == errno.ENOTDIR
    with pytest.raises(StorageError) as info:
        copy_tree(tmp_path / "missing", tmp_path / "t")
    assert info.value.errno == errno.ENOENT
