"""The upload source: a request body read by the pipeline in full buffers, in order, once; a short body fails."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from pycdi.datapath.errors import TransientError
from pycdi.datapath.sources.upload import UploadSource


def test_bytes_arrive_in_order_and_reads_fill_what_is_asked() -> None:
    data = os.urandom(3 << 20 | 12345)
    source = UploadSource(io.BytesIO(data), len(data))
    stream = source.open()
    digest = hashlib.sha256()
    sizes = [1, 100, 65536, 1 << 20, 7, -1]
    got = []
    i = 0
    while True:
        size = sizes[i % len(sizes)]
        i += 1
        chunk = stream.read(size)
        if not chunk:
            break
        assert isinstance(chunk, bytes)
        got.append(len(chunk))
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert stream.count == len(data)
    assert got[:6] == [1, 100, 65536, 1 << 20, 7, 1 << 20]  # full reads until the end


def test_readinto_fills_the_callers_buffer_in_place() -> None:
    data = os.urandom(100_000)
    stream = UploadSource(io.BytesIO(data), len(data)).open()
    buf = bytearray(64 << 10)
    assert stream.readinto(memoryview(buf)) == len(buf) and buf == data[:len(buf)]
    assert stream.readinto(memoryview(buf)) == len(data) - len(buf)
    assert stream.readinto(memoryview(buf)) == 0
    assert stream.count == len(data)


def test_a_short_body_is_an_error_not_an_end() -> None:
    stream = UploadSource(io.BytesIO(b"12345"), 10).open()
    with pytest.raises(TransientError, match="5 of 10 bytes"):
        stream.read(100)


def test_a_body_of_unknown_length_ends_when_it_ends() -> None:
    stream = UploadSource(io.BytesIO(b"12345"), None).open()
    assert stream.read(100) == b"12345"
    assert stream.read(100) == b""


def test_source_reads_once_and_offers_no_ranges() -> None:
    body = io.BytesIO(b"12345")
    source = UploadSource(body, 5, "application/octet-stream")
    probe = source.probe()
    assert (probe.size, probe.accepts_ranges, probe.content_type) == (5, False, "application/octet-stream")
    assert source.ranged() is None
    source.open().close()
    assert body.closed  # the server learns that the pipeline stopped reading
    with pytest.raises(RuntimeError):
        source.open()
