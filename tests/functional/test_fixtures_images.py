"""The image corpus is what it claims: every format and compression converts back to the same raw bytes."""

from __future__ import annotations

import json
import lzma
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import zstandard
from isal import igzip

from tests.support.images import ARCHIVE_NAMES, DISK_NAMES, Corpus, corpus, sha256_file
from tests.support.images_bad import ABSURD_VIRTUAL_SIZE, ESCAPE_DIR


def _open(path: Path, compression: str | None) -> BinaryIO:
    if compression == "gz":
        # isal: zlib's inflate takes seconds per GiB here
        return igzip.open(path, "rb")  # type: ignore[no-untyped-call,no-any-return]
    if compression == "xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    if compression == "zst":
        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def _plain(c: Corpus, name: str, tmp_path: Path) -> Path:
    """The entry's file, decompressed (by Python's own decoders, independent of the tools that built it)."""
    e = c.entry(name)
    if not e.compression:
        return c.path(name)
    out = tmp_path / "plain"
    with _open(c.path(name), e.compression) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    return out


def _info(path: Path) -> dict[str, Any]:
    done = subprocess.run(["qemu-img", "info", "--output=json", str(path)], capture_output=True, text=True,
                          check=True, timeout=60)
    info: dict[str, Any] = json.loads(done.stdout)
    return info


@pytest.mark.parametrize("name", DISK_NAMES)
def test_every_disk_converts_back_to_the_raw_bytes(image_corpus: Corpus, name: str, tmp_path: Path) -> None:
    entry = image_corpus.entry(name)
    plain = _plain(image_corpus, name, tmp_path)
    info = _info(plain)
    assert info["format"] == entry.format
    assert info["virtual-size"] == image_corpus.expected_size(name)
    raw = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-q", "-f", entry.format, "-O", "raw", str(plain), str(raw)],
                   check=True, timeout=120)
    assert sha256_file(raw) == image_corpus.expected_sha256(name)
    if entry.compression:
        assert image_corpus.path(name).stat().st_size < plain.stat().st_size


def test_the_raw_image_is_a_sparse_clean_ext4_holding_the_data(image_corpus: Corpus) -> None:
    raw = image_corpus.path("raw")
    assert raw.stat().st_size == image_corpus.virtual_size == 64 << 20
    assert raw.stat().st_blocks * 512 < image_corpus.virtual_size // 2  # holes where the filesystem is empty
    subprocess.run(["e2fsck", "-fn", str(raw)], check=True, capture_output=True, timeout=60)
    readme = subprocess.run(["debugfs", "-R", "cat /README", str(raw)], capture_output=True, check=True,
                            timeout=60).stdout
    assert readme == (image_corpus.data_dir / "README").read_bytes()
    sizes = [p.stat().st_size for p in image_corpus.data_dir.rglob("*") if p.is_file()]
    assert sum(sizes) >= image_corpus.data_size and len(sizes) > 10


def test_the_same_spec_gives_the_same_bytes(image_corpus: Corpus, tmp_path: Path) -> None:
    again = corpus(tmp_path)
    assert again.sha256_raw == image_corpus.sha256_raw
    other_seed = corpus(tmp_path, seed=image_corpus.seed + 1)
    assert other_seed.sha256_raw != image_corpus.sha256_raw


@pytest.mark.parametrize("name", ARCHIVE_NAMES)
def test_archives_hold_the_data_files(image_corpus: Corpus, name: str, tmp_path: Path) -> None:
    with tarfile.open(_plain(image_corpus, name, tmp_path)) as tar:
        tar.extractall(tmp_path / "out", filter="data")
    got = {str(p.relative_to(tmp_path / "out")): sha256_file(p) for p in (tmp_path / "out").rglob("*")
           if p.is_file() and not p.is_symlink()}
    assert got == image_corpus.data_manifest()
    assert (tmp_path / "out" / "latest").is_symlink()


def test_listing_names_every_entry_once(image_corpus: Corpus) -> None:
    listing = image_corpus.listing()
    assert len({e.name for e in listing}) == len(listing) == len(image_corpus.names())
    assert {e.filename for e in listing if e.good} >= {"disk.img", "disk.qcow2.xz", "disk.vhd.zst", "disk.iso.gz"}
    assert all(not image_corpus.entry(n).good for n in image_corpus.names(good=False))
    with pytest.raises(KeyError):
        image_corpus.entry("floppy")


def test_html_is_a_small_raw_to_qemu_img(image_corpus: Corpus) -> None:
    path = image_corpus.path("html")
    assert path.read_bytes().startswith(b"<!DOCTYPE html>")
    assert _info(path)["format"] == "raw"


def test_truncated_qcow2_opens_but_check_finds_it_broken(image_corpus: Corpus) -> None:
    path = image_corpus.path("qcow2-truncated")
    assert path.stat().st_size < image_corpus.path("qcow2").stat().st_size
    assert _info(path)["format"] == "qcow2"
    check = subprocess.run(["qemu-img", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode != 0, check.stdout


def test_corrupt_qcow2_header_cannot_be_opened(image_corpus: Corpus) -> None:
    done = subprocess.run(["qemu-img", "info", str(image_corpus.path("qcow2-corrupt-header"))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "cluster size" in done.stderr.lower()


def test_absurd_size_qcow2_claims_a_petabyte_in_a_small_file(image_corpus: Corpus) -> None:
    path = image_corpus.path("qcow2-absurd-size")
    assert _info(path)["virtual-size"] == ABSURD_VIRTUAL_SIZE
    assert path.stat().st_size < 16 << 20


def test_qcow2_with_backing_file_and_with_external_data_file(image_corpus: Corpus) -> None:
    backing = _info(image_corpus.path("qcow2-backing-file"))
    assert backing["backing-filename"] == str(image_corpus.path("raw").resolve())
    data = _info(image_corpus.path("qcow2-data-file"))
    assert data["format-specific"]["data"]["data-file"].startswith("/")


@pytest.mark.parametrize("name", ["bomb.gz", "bomb.zst"])
def test_bombs_are_small_and_expand_to_a_gibibyte(image_corpus: Corpus, name: str) -> None:
    path = image_corpus.path(name)
    assert path.stat().st_size < 2 << 20
    total, zeros = 0, bytes(1 << 22)
    with _open(path, name.rpartition(".")[2]) as f:
        while chunk := f.read(1 << 22):
            assert chunk == zeros[: len(chunk)]
            total += len(chunk)
    assert total == 1 << 30


def test_gzip_bomb_of_any_size_is_one_valid_gzip_member(image_corpus: Corpus) -> None:
    size = (5 << 20) + 12345
    data = image_corpus.bomb(size, "gz").read_bytes()
    d = zlib.decompressobj(wbits=31)
    out = d.decompress(data)
    assert len(out) == size and not out.strip(b"\0") and d.eof and not d.unused_data  # CRC and length checked
    assert subprocess.run(["gzip", "-t"], input=data, timeout=60).returncode == 0


@pytest.mark.parametrize(("name", "evil"), [
    ("tar-dotdot", {"../escape.txt", "sub/../../escape2.txt"}),
    ("tar-absolute", {f"{ESCAPE_DIR}/absolute.txt"}),
    ("tar-symlink-out", {"out-link", "out-rel", "out-link/via-symlink.txt"}),
    ("tar-hardlink-out", {"passwd-copy", "hosts-copy"}),
])
def test_evil_tars_carry_their_escapes(image_corpus: Corpus, name: str, evil: set[str], tmp_path: Path) -> None:
    with tarfile.open(image_corpus.path(name)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert evil <= set(members)
        links = {m.linkname for m in members.values() if m.issym() or m.islnk()}
        if name == "tar-symlink-out":
            assert links == {ESCAPE_DIR, "../../.."}
        if name == "tar-hardlink-out":
            assert links == {"/etc/passwd", "../../etc/hosts"}
        # Python's own safe extraction refuses each of them (an absolute name it makes relative instead).
        if name == "tar-absolute":
            tar.extractall(tmp_path / "out", filter="data")
            assert (tmp_path / "out" / ESCAPE_DIR.lstrip("/") / "absolute.txt").is_file()
        else:
            with pytest.raises(tarfile.FilterError):
                tar.extractall(tmp_path / "out", filter="data")
    assert not Path(ESCAPE_DIR).exists()
