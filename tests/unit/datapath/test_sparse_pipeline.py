"""The sparse copy's pipeline: a reading thread, writeback behind the write head, errors raised where they belong."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest

from pycdi.datapath import pipeline, sparse
from pycdi.datapath.errors import TransientError

from .conftest import MiB, allocated


def patterned(size: int) -> bytes:
    """Data and zero runs in turn, 3 MiB each, some of it not chunk aligned."""
    out = bytearray(size)
    for i, offset in enumerate(range(4096, size, 6 * MiB)):
        out[offset : offset + 3 * MiB] = hashlib.sha256(str(i).encode()).digest() * (3 * MiB // 32)
    return bytes(out[:size])


@pytest.mark.parametrize("durable", [True, False])
def test_long_copy_is_exact_and_sparse(tmp_path: Path, durable: bool) -> None:
    content = patterned(pipeline.WRITEBACK_STEP * 3 + 12345)  # several writebacks, a short last chunk
    out = tmp_path / "out.img"
    seen: list[int] = []
    assert sparse.copy_sparse(io.BytesIO(content), str(out), progress=seen.append, durable=durable) == len(content)
    assert out.read_bytes() == content
    assert seen == sorted(seen) and seen[-1] == len(content)
    data_bytes = sum(1 for i in range(0, len(content), 4096) if content[i : i + 4096].strip(b"\0")) * 4096
    assert allocated(out) <= data_bytes + 2 * sparse.BLOCK * (len(content) // (6 * MiB) + 1)


def test_a_reading_error_is_raised_by_the_copy(tmp_path: Path) -> None:
    class Failing(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            if self.tell() >= 5 * MiB:
                raise TransientError("connection reset after 5 MiB")
            return super().read(size)

        readinto = None  # type: ignore[assignment]  # only read(), as an HTTP body

    with pytest.raises(TransientError, match="after 5 MiB"):
        sparse.copy_sparse(Failing(os.urandom(8 * MiB)), str(tmp_path / "out.img"))
    for thread in threading.enumerate():  # the reading and writeback threads end with the copy
        if thread.name.startswith("sparse-"):
            thread.join(10)
            assert not thread.is_alive()


def test_short_reads_are_gathered_into_aligned_chunks(tmp_path: Path) -> None:
    content = patterned(10 * MiB)

    class Dribble(io.BytesIO):  # a decompressor's way: fewer bytes than asked, odd sizes
        def read(self, size: int | None = -1, /) -> bytes:
            return super().read(min(size if size and size > 0 else 77_777, 77_777))

        readinto = None  # type: ignore[assignment]

    out = tmp_path / "out.img"
    seen: list[int] = []
    sparse.copy_sparse(Dribble(content), str(out), progress=seen.append)
    assert out.read_bytes() == content
    assert all(offset % sparse.CHUNK == 0 for offset in seen[:-1])


def test_a_writing_error_stops_the_reader(tmp_path: Path) -> None:
    reads = 0

    class Endless:
        def read(self, size: int = -1, /) -> bytes:
            nonlocal reads
            reads += 1
            return b"\x01" * size

    with pytest.raises(FileNotFoundError):
        # A target that cannot be opened: the copy fails before it reads anything.
        sparse.copy_sparse(Endless(), str(tmp_path / "missing-dir" / "out.img"))
    assert reads == 0
