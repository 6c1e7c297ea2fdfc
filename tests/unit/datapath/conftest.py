"""Small real images made with qemu-img for the data path's unit tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

MiB = 1 << 20


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def write_pattern_raw(path: Path, size: int = 8 * MiB) -> bytes:
    """A sparse raw image with data at a few offsets; returns its full content."""
    content = bytearray(size)
    for i, off in enumerate((0, 3 * MiB + 4096, size - 8192)):
        block = bytes((i * 37 + j) % 251 for j in range(8192))
        content[off : off + len(block)] = block
    with open(path, "wb") as f:
        f.truncate(size)
        for off in (0, 3 * MiB + 4096, size - 8192):
            f.seek(off)
            f.write(content[off : off + 8192])
    return bytes(content)


@pytest.fixture
def raw_image(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "src.img"
    return path, write_pattern_raw(path)


@pytest.fixture
def qcow2_image(tmp_path: Path, raw_image: tuple[Path, bytes]) -> Path:
    path = tmp_path / "src.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw_image[0]), str(path))
    return path


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512
