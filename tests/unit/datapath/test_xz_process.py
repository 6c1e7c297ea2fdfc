"""Multi-block xz decoded by an `xz -T0 -dc` subprocess: same bytes, same errors, no process left behind."""

from __future__ import annotations

import gc
import io
import lzma
import os
import subprocess
from pathlib import Path

import pytest

from pycdi.datapath.errors import PermanentError
from pycdi.datapath.formats import CappedReader, XzProcessReader, XzReader, unwrap, xz_blocks_parallel

from .conftest import MiB


def xz_multiblock(data: bytes) -> bytes:
    """What `xz -T2` writes: several blocks, each with its sizes in its header."""
    done = subprocess.run(["xz", "-T2", "--block-size=1MiB", "-0", "-c"], input=data, capture_output=True, check=True)
    return done.stdout


def payload() -> bytes:
    text = b"".join(b"line %d of the image\n" % i for i in range(100_000))
    return text + bytes(3 * MiB) + os.urandom(MiB) + b"tail"


def read_all(reader: object) -> bytes:
    out = bytearray()
    while chunk := reader.read(300_000):  # type: ignore[attr-defined]
        out += chunk
    return bytes(out)


def test_multiblock_stream_goes_to_the_subprocess() -> None:
    data = payload()
    packed = xz_multiblock(data)
    assert xz_blocks_parallel(packed[:64]) and not xz_blocks_parallel(lzma.compress(data[:10_000])[:64])
    stream, inner, layers = unwrap(io.BytesIO(packed))
    assert layers == ["xz"] and inner == "raw"
    assert isinstance(stream.inner, XzProcessReader)
    assert read_all(stream) == data


def test_single_block_stream_stays_in_process() -> None:
    stream, _, _ = unwrap(io.BytesIO(lzma.compress(b"abc" * 1000)))
    assert isinstance(stream.inner, XzReader)
    assert read_all(stream) == b"abc" * 1000


def test_concatenated_streams_and_readinto() -> None:
    a, b = payload(), b"second stream" * 10_000
    stream, _, _ = unwrap(io.BytesIO(xz_multiblock(a) + xz_multiblock(b)))
    buf = bytearray(MiB)
    out = bytearray()
    while n := stream.readinto(memoryview(buf)):
        out += buf[:n]
    assert bytes(out) == a + b


def test_truncated_stream_is_refused() -> None:
    packed = xz_multiblock(payload())
    stream, _, _ = unwrap(io.BytesIO(packed[: len(packed) // 2]))
    with pytest.raises(PermanentError, match="xz stream is truncated"):
        read_all(stream)


def test_corrupt_stream_is_refused() -> None:
    packed = bytearray(xz_multiblock(payload()))
    packed[5000:5100] = b"\xff" * 100
    stream, _, _ = unwrap(io.BytesIO(bytes(packed)))
    with pytest.raises(PermanentError, match="xz stream is corrupt"):
        read_all(stream)


def test_reading_error_of_the_source_wins() -> None:
    class Failing(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            if self.tell() > 100_000:
                raise ConnectionResetError("peer went away")
            return super().read(min(size or 65536, 65536) if size and size > 0 else 65536)

    stream, _, _ = unwrap(Failing(xz_multiblock(payload())))
    with pytest.raises(ConnectionResetError):
        read_all(stream)


def test_bomb_is_capped_and_xz_is_reaped(tmp_path: Path) -> None:
    bomb = xz_multiblock(bytes(64 * MiB))
    stream, _, _ = unwrap(io.BytesIO(bomb))
    reader = stream.inner
    assert isinstance(reader, XzProcessReader)
    proc = reader._proc
    capped = CappedReader(stream, 4 * MiB, "image")
    with pytest.raises(PermanentError, match="larger than the reported available storage"):
        while capped.read(MiB):
            pass
    del stream, reader, capped
    gc.collect()
    assert proc.returncode is not None  # killed and waited for, not left running
