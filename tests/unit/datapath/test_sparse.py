"""The sparse writer: zero blocks become holes, content is exact, memory is one buffer."""

from __future__ import annotations

import errno
import fcntl
import io
import os
import subprocess
from pathlib import Path

import pytest

from pycdi import mounts
from pycdi.datapath import sparse
from pycdi.datapath.sparse import BLOCK, DIRECT_ALIGN, DirectWrites, SparseWriter, copy_sparse
from tests.support.files import drop_cache

from .conftest import MiB, allocated


def test_holes_and_exact_content(tmp_path: Path, raw_image: tuple[Path, bytes]) -> None:
    _, content = raw_image
    out = tmp_path / "out.img"
    seen: list[int] = []
    size = copy_sparse(io.BytesIO(content), str(out), progress=seen.append)
    assert size == len(content)
    assert out.read_bytes() == content
    # Three 8 KiB data extents: at most three 64 KiB blocks (plus one straddling) allocated out of 8 MiB.
    assert allocated(out) <= 4 * BLOCK
    assert seen[-1] == len(content)
    assert seen == sorted(seen)


def test_trailing_zeros_extend_file_without_allocation(tmp_path: Path) -> None:
    out = tmp_path / "out.img"
    copy_sparse(io.BytesIO(b"x" * 100 + bytes(5 * MiB)), str(out))
    assert os.path.getsize(out) == 100 + 5 * MiB
    assert allocated(out) <= BLOCK


def test_previous_content_does_not_survive(tmp_path: Path) -> None:
    out = tmp_path / "out.img"
    out.write_bytes(b"\xff" * (2 * MiB))
    copy_sparse(io.BytesIO(bytes(2 * MiB)), str(out))
    assert out.read_bytes() == bytes(2 * MiB)


def test_minimum_size_is_honoured(tmp_path: Path) -> None:
    out = tmp_path / "out.img"
    copy_sparse(io.BytesIO(b"abc"), str(out), size=MiB)
    assert os.path.getsize(out) == MiB


def _cached_bytes(path: Path) -> int:
    """How much of the file is in the page cache (util-linux fincore)."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def _direct_io_works(directory: Path) -> bool:
    if not sparse.direct_writes_suit(str(directory / "probe")):
        return False
    probe = directory / "probe"
    probe.touch()
    direct = DirectWrites.open(str(probe), DIRECT_ALIGN)
    if direct is None:
        return False
    direct.close()
    return True


def _data(size: int) -> bytes:
    """Incompressible-looking bytes with zero blocks in between: data runs of several lengths."""
    content = bytearray(os.urandom(size))
    content[BLOCK : 3 * BLOCK] = bytes(2 * BLOCK)
    return bytes(content)


def test_a_durable_copy_writes_past_the_page_cache(tmp_path: Path) -> None:
    if not _direct_io_works(tmp_path):
        pytest.skip(f"the filesystem of {tmp_path} has no O_DIRECT")
    content = _data(4 * MiB + 100)  # an unaligned tail: it goes through the page cache
    direct, cached = tmp_path / "direct.img", tmp_path / "cached.img"
    for path in (direct, cached):  # the files exist and have nothing cached
        path.touch()
        drop_cache(path)
    copy_sparse(io.BytesIO(content), str(direct))
    copy_sparse(io.BytesIO(content), str(cached), durable=False)
    # The scratch-style copy leaves its pages cached; the durable one only its last, unaligned piece.
    assert _cached_bytes(direct) <= DIRECT_ALIGN
    assert _cached_bytes(cached) >= 4 * MiB - 2 * BLOCK
    assert direct.read_bytes() == content == cached.read_bytes()
    # The zero blocks stay a hole (a few blocks of slack: the filesystem may allocate ahead for the tail).
    assert allocated(direct) <= len(content) - 2 * BLOCK + 4 * DIRECT_ALIGN


def test_network_and_memory_filesystems_get_no_direct_writes(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if shm.is_dir() and mounts.mount_of(shm).fstype == "tmpfs":
        out = shm / f"pycdi-test-{os.getpid()}-{tmp_path.name}.img"
        try:
            assert not sparse.direct_writes_suit(str(out))
            with SparseWriter(str(out), direct=True) as writer:
                assert not writer.direct
        finally:
            out.unlink(missing_ok=True)
    assert not sparse.direct_writes_suit("/proc/self/nothing")  # proc: not a disk
    assert "nfs" not in sparse.DIRECT_FILESYSTEMS and "nfs4" not in sparse.DIRECT_FILESYSTEMS


def test_without_direct_io_the_page_cache_takes_the_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem that refuses O_DIRECT at open (as FUSE or older tmpfs do): injected, none is at hand."""
    real_open = os.open

    def refusing_open(path: str, flags: int, *args: int) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)  # the module sparse writes with
    out = tmp_path / "out.img"
    content = _data(2 * MiB + 7)
    with SparseWriter(str(out), direct=True) as writer:
        assert not writer.direct
    copy_sparse(io.BytesIO(content), str(out))
    assert out.read_bytes() == content


def test_a_refused_direct_write_goes_through_the_page_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem that takes O_DIRECT at open and refuses the write (EINVAL, injected): that write and the rest
    go through the page cache; the content is whole."""
    if not _direct_io_works(tmp_path):
        pytest.skip(f"the filesystem of {tmp_path} has no O_DIRECT")
    out = tmp_path / "out.img"
    content = _data(3 * MiB)
    real_pwrite = os.pwrite
    refused: list[int] = []

    def pwrite(fd: int, data: memoryview, offset: int) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT and offset >= MiB:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    with SparseWriter(str(out), direct=True) as writer:
        writer.truncate()
        for i in range(3):
            writer.write_chunk(content[i * MiB : (i + 1) * MiB], MiB)
        writer.finish()
        assert not writer.direct
    assert len(refused) == 1  # asked once, then never again
    assert out.read_bytes() == content


def test_direct_writes_take_only_aligned_runs(tmp_path: Path) -> None:
    if not _direct_io_works(tmp_path):
        pytest.skip(f"the filesystem of {tmp_path} has no O_DIRECT")
    path = tmp_path / "out.img"
    path.touch()
    direct = DirectWrites.open(str(path), 2 * DIRECT_ALIGN)
    assert direct is not None
    try:
        block = memoryview(os.urandom(2 * DIRECT_ALIGN))
        assert direct.write(block[:100], 0) == 0  # length
        assert direct.write(block[:DIRECT_ALIGN], 512) == 0  # offset
        assert direct.write(memoryview(os.urandom(4 * DIRECT_ALIGN)), 0) == 0  # larger than its buffer
        assert direct.write(block, DIRECT_ALIGN) == 2 * DIRECT_ALIGN
    finally:
        direct.close()
    assert path.read_bytes() == bytes(DIRECT_ALIGN) + bytes(block)
