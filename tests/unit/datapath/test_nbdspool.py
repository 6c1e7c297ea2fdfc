"""The scratch file served over NBD while it downloads: qemu-img reads what has arrived and waits for the rest."""

from __future__ import annotations

import io
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pycdi.datapath import nbdspool, qemu, sparse
from pycdi.datapath.errors import PermanentError, TransientError
from pycdi.datapath.formats import Readable

from .conftest import MiB, qemu_img


class Gated(io.BytesIO):
    """Gives its bytes up to `gate_at`, then waits for the test to open the gate."""

    def __init__(self, data: bytes, gate_at: int) -> None:
        super().__init__(data)
        self.gate_at = gate_at
        self.gate = threading.Event()

    def read(self, size: int | None = -1, /) -> bytes:
        pos = self.tell()
        if pos >= self.gate_at:
            assert self.gate.wait(60)
        elif size is None or size < 0 or pos + size > self.gate_at:
            size = self.gate_at - pos
        return super().read(size)

    def readinto(self, view: object, /) -> int:  # the copy's fast path must honour the gate too
        target = memoryview(view)  # type: ignore[arg-type]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


@pytest.fixture
def image(tmp_path: Path) -> tuple[bytes, bytes]:
    """A qcow2 of a 24 MiB raw disk holding 6 MiB of data (so several MiB of clusters), and the raw bytes."""
    raw = bytearray(24 * MiB)
    for i, offset in enumerate((0, 7 * MiB, 15 * MiB, 22 * MiB)):
        raw[offset : offset + 1536 * 1024] = os.urandom(1536 * 1024) if i % 2 else bytes([i + 1]) * (1536 * 1024)
    (tmp_path / "src.raw").write_bytes(raw)
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(tmp_path / "src.raw"), str(tmp_path / "src.qcow2"))
    return (tmp_path / "src.qcow2").read_bytes(), bytes(raw)


def download(path: Path) -> Callable[[Readable, Callable[[int], None]], None]:
    def fill(reader: Readable, advance: Callable[[int], None]) -> None:
        sparse.copy_sparse(reader, str(path), progress=advance, durable=False)

    return fill


def test_reads_are_served_before_the_download_ends(tmp_path: Path, image: tuple[bytes, bytes]) -> None:
    data, raw = image
    assert len(data) > 6 * MiB
    source = Gated(data, MiB)  # header, L1 and refcount table are in front; the data clusters come later
    scratch, out = tmp_path / "scratch", tmp_path / "out.img"
    with nbdspool.serve(str(scratch), len(data), download(scratch), source) as served:
        info = qemu.info(served.uri, fmt="qcow2", timeout=None)  # answered while the download is held
        assert info.virtual_size == 24 * MiB and not source.gate.is_set()
        source.gate.set()
        qemu.convert(served.uri, str(out), src_format="qcow2")
        served.wait()
    assert out.read_bytes() == raw
    assert scratch.read_bytes() == data


def test_small_reads_far_ahead_are_fetched_by_range(tmp_path: Path) -> None:
    data = os.urandom(MiB) + bytes(40 * MiB)
    asked: list[tuple[int, int]] = []

    def fetch(offset: int, length: int) -> bytes:
        asked.append((offset, length))
        return data[offset : offset + length]

    source = Gated(data, MiB)
    scratch = tmp_path / "scratch"
    with nbdspool.serve(str(scratch), len(data), download(scratch), source, fetch) as served:
        # 64 KiB at 30 MiB, far past the download stopped at 1 MiB: answered by a ranged fetch, no waiting.
        done = subprocess.run(["qemu-io", "-r", "-f", "raw", "-c", "read -P 0 30M 64k", served.uri],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and "read 65536/65536 bytes" in done.stdout, done.stdout + done.stderr
        assert asked == [(30 * MiB, 64 * 1024)]
        # A data-sized read (2 MiB) far ahead waits for the download instead of fetching.
        waiting = subprocess.Popen(["qemu-io", "-r", "-f", "raw", "-c", "read 20M 2M", served.uri],
                                   stdout=subprocess.PIPE, text=True)
        source.gate.set()
        assert "read 2097152/2097152 bytes" in waiting.communicate(timeout=60)[0]
        assert len(asked) == 1
        served.wait()


def test_a_failed_download_fails_the_reads_and_is_the_error(tmp_path: Path, image: tuple[bytes, bytes]) -> None:
    data = image[0]

    class Broken(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            if self.tell() >= MiB:
                raise TransientError("connection closed after 1 MiB")
            return super().read(min(size if size and size > 0 else MiB, MiB - self.tell()))

        def readinto(self, view: object, /) -> int:
            target = memoryview(view)  # type: ignore[arg-type]
            data = self.read(len(target))
            target[: len(data)] = data
            return len(data)

    scratch, out = tmp_path / "scratch", tmp_path / "out.img"
    with nbdspool.serve(str(scratch), len(data), download(scratch), Broken(data)) as served:
        with pytest.raises(PermanentError, match="could not convert"):
            qemu.convert(served.uri, str(out), src_format="qcow2")
        with pytest.raises(TransientError, match="connection closed"):
            served.wait()
        assert isinstance(served.error, TransientError)


def test_leaving_early_stops_the_download(tmp_path: Path) -> None:
    source = Gated(bytes(8 * MiB), MiB)
    scratch = tmp_path / "scratch"
    with nbdspool.serve(str(scratch), 8 * MiB, download(scratch), source) as served:
        pass
    source.gate.set()  # the download's next read sees the import gave up
    with pytest.raises(nbdspool.Cancelled):
        served.wait()
