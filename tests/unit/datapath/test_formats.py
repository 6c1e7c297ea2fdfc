"""Sniffing by magic bytes and streaming decompression with an output cap."""

from __future__ import annotations

import gzip
import io
import lzma
from pathlib import Path

import pytest
import zstandard

from pycdi.datapath.errors import PermanentError
from pycdi.datapath.formats import CappedReader, qcow2_header_problem, sniff, unwrap

from .conftest import MiB, qemu_img


def read_all(reader: object) -> bytes:
    out = bytearray()
    while chunk := reader.read(300_000):  # type: ignore[attr-defined]
        out += chunk
    return bytes(out)


@pytest.mark.parametrize(
    ("fmt", "opts", "expected"),
    [("qcow2", [], "qcow2"), ("vmdk", [], "vmdk"), ("vdi", [], "vdi"), ("vpc", [], "vhd"), ("vhdx", [], "vhdx")],
)
def test_sniff_real_images(
    tmp_path: Path, raw_image: tuple[Path, bytes], fmt: str, opts: list[str], expected: str
) -> None:
    out = tmp_path / f"img.{fmt}"
    qemu_img("convert", "-f", "raw", "-O", fmt, *opts, str(raw_image[0]), str(out))
    assert sniff(out.read_bytes()[:65536]) == expected


def test_sniff_raw_tar_iso_compressions(raw_image: tuple[Path, bytes]) -> None:
    data = raw_image[1]
    assert sniff(data[:65536]) == "raw"
    assert sniff(gzip.compress(b"x")) == "gz"
    assert sniff(lzma.compress(b"x")) == "xz"
    assert sniff(zstandard.ZstdCompressor().compress(b"x")) == "zst"
    tar_head = bytearray(512)
    tar_head[257:262] = b"ustar"
    assert sniff(bytes(tar_head)) == "tar"
    iso = bytearray(40000)
    iso[32769:32774] = b"CD001"
    assert sniff(bytes(iso)) == "iso"


@pytest.mark.parametrize("kind", ["gz", "xz", "zst"])
def test_unwrap_round_trip_concatenated(kind: str) -> None:
    part1, part2 = bytes(range(256)) * 5000, b"\0" * (3 * MiB) + b"tail"
    compress = {
        "gz": gzip.compress,
        "xz": lzma.compress,
        "zst": lambda b: zstandard.ZstdCompressor().compress(b),
    }[kind]
    # Two members/streams/frames back to back decode as one stream, as the command-line tools do.
    stream, inner, layers = unwrap(io.BytesIO(compress(part1) + compress(part2)))
    assert layers == [kind]
    assert inner == "raw"
    assert read_all(stream) == part1 + part2


def test_unwrap_nested_layers() -> None:
    payload = b"QFI\xfb" + bytes(100)
    stream, inner, layers = unwrap(io.BytesIO(zstandard.ZstdCompressor().compress(gzip.compress(payload))))
    assert layers == ["zst", "gz"]
    assert inner == "qcow2"
    assert read_all(stream) == payload


@pytest.mark.parametrize("kind", ["gz", "xz"])
def test_truncated_stream_is_refused(kind: str) -> None:
    data = (gzip.compress if kind == "gz" else lzma.compress)(bytes(range(256)) * 20000)
    stream, _, _ = unwrap(io.BytesIO(data[: len(data) // 2]))
    with pytest.raises(PermanentError, match="truncated"):
        read_all(stream)


def test_corrupt_gzip_is_refused() -> None:
    data = bytearray(gzip.compress(bytes(range(256)) * 20000))
    data[200:260] = b"\xff" * 60
    stream, _, _ = unwrap(io.BytesIO(bytes(data)))
    with pytest.raises(PermanentError, match="gzip stream is corrupt"):
        read_all(stream)


def test_bomb_stops_at_cap_with_bounded_reads() -> None:
    # 256 MiB of zeros compress to ~250 KiB; the cap stops the stream after 8 MiB, and no single read
    # returns more than it asked for (so memory stays at one buffer).
    comp = zstandard.ZstdCompressor().compressobj()
    bomb = b"".join(comp.compress(bytes(MiB)) for _ in range(256)) + comp.flush()
    for payload in (gzip.compress(bytes(256 * MiB), 1), bomb):
        stream, _, _ = unwrap(io.BytesIO(payload))
        capped = CappedReader(stream, 8 * MiB, "image")
        with pytest.raises(PermanentError) as err:
            while chunk := capped.read(MiB):
                assert len(chunk) <= MiB
        assert "larger than the reported available storage 8388608" in str(err.value)
        assert capped.count <= 9 * MiB


def test_qcow2_header_problems(tmp_path: Path, qcow2_image: Path) -> None:
    assert qcow2_header_problem(qcow2_image.read_bytes()[:65536]) is None
    overlay = tmp_path / "overlay.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", str(qcow2_image), "-F", "qcow2", str(overlay))
    assert qcow2_header_problem(overlay.read_bytes()[:65536]) == f"backing file {qcow2_image}"
    ext = tmp_path / "ext.qcow2"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'ext.data'}", str(ext), "8M")
    assert qcow2_header_problem(ext.read_bytes()[:65536]) == "an external data file"
