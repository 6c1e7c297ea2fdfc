"""The sparse writer: zero blocks become holes, content is exact, memory is one buffer."""

from __future__ import annotations

import io
import os
from pathlib import Path

from pycdi.datapath.sparse import BLOCK, copy_sparse

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
