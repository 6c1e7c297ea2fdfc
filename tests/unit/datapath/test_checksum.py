"""Checksum specs and verification over a stream."""

from __future__ import annotations

import hashlib
import io

import pytest

from pycdi.datapath.checksum import ChecksumMismatch, HashingReader, parse
from pycdi.datapath.errors import PermanentError


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256", "sha512"])
def test_verify_each_algorithm(algo: str) -> None:
    data = b"disk" * 100_000
    reader = HashingReader(io.BytesIO(data), f"{algo}:{hashlib.new(algo, data).hexdigest().upper()}")
    assert reader.read(1000) == data[:1000]
    reader.drain()  # the unread rest still counts
    reader.verify()


def test_mismatch_names_both_digests() -> None:
    reader = HashingReader(io.BytesIO(b"abc"), "sha256:" + "0" * 64)
    reader.drain()
    with pytest.raises(ChecksumMismatch, match=r"checksum mismatch: expected sha256:0{64}, got sha256:ba7816bf"):
        reader.verify()


@pytest.mark.parametrize("spec", ["sha256:abc", "crc32:00000000", "sha256", "md5:" + "g" * 32])
def test_malformed_spec(spec: str) -> None:
    with pytest.raises(PermanentError, match="invalid checksum"):
        parse(spec)
