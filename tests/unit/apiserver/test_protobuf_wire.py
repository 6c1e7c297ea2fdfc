"""Tests for the protobuf wire-format reader."""

from __future__ import annotations

import struct

import pytest

from pycdi.cluster.apiserver.protobuf import ProtobufError
from pycdi.cluster.apiserver.protobuf.wire import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    encode_field,
    encode_varint,
    iter_fields,
    read_varint,
    to_int32,
    to_int64,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (2**63 - 1, b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f"),
    ],
)
def test_varint_known_encodings(value: int, encoded: bytes) -> None:
    # Values from the protobuf encoding guide (300 = ac 02).
    assert encode_varint(value) == encoded
    assert read_varint(encoded + b"tail", 0) == (value, len(encoded))


def test_negative_int64_is_ten_bytes_and_round_trips() -> None:
    encoded = encode_varint(-1)
    assert encoded == b"\xff" * 9 + b"\x01"
    raw, end = read_varint(encoded, 0)
    assert end == 10
    assert to_int64(raw) == -1
    assert to_int32(raw) == -1
    assert to_int64(read_varint(encode_varint(-62135596800), 0)[0]) == -62135596800


def test_truncated_and_overlong_varints_are_rejected() -> None:
    with pytest.raises(ProtobufError, match="truncated"):
        read_varint(b"\x80\x80", 0)
    with pytest.raises(ProtobufError, match="10 bytes"):
        read_varint(b"\xff" * 11 + b"\x01", 0)


def test_iter_fields_reads_every_wire_type_in_order() -> None:
    data = (
        encode_field(1, 150)
        + encode_field(2, "testing")
        + bytes([3 << 3 | FIXED64])
        + struct.pack("<Q", 2**40 + 5)
        + bytes([4 << 3 | FIXED32])
        + struct.pack("<I", 7)
        + encode_field(2, b"\x00\xff")
    )
    assert list(iter_fields(data)) == [
        (1, VARINT, 150),
        (2, LEN, b"testing"),
        (3, FIXED64, 2**40 + 5),
        (4, FIXED32, 7),
        (2, LEN, b"\x00\xff"),
    ]


def test_field_numbers_above_fifteen_use_two_byte_keys() -> None:
    # ObjectMeta.managedFields is field 17: key (17 << 3 | 2) = 138 needs two bytes.
    data = encode_field(17, "x")
    assert data[:2] == b"\x8a\x01"
    assert list(iter_fields(data)) == [(17, LEN, b"x")]


def test_empty_message_has_no_fields() -> None:
    assert list(iter_fields(b"")) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x0a\x05abc", "runs past the end"),
        (bytes([1 << 3 | FIXED64]) + b"\x00" * 7, "truncated fixed64"),
        (bytes([1 << 3 | FIXED32]) + b"\x00" * 3, "truncated fixed32"),
        (bytes([1 << 3 | 3]), "unsupported wire type 3"),
        (bytes([1 << 3 | 7]), "unsupported wire type 7"),
        (b"\x00\x01", "field number 0"),
        (b"\x08", "truncated varint"),
    ],
)
def test_malformed_input_raises(data: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        list(iter_fields(data))


def test_protobuf_error_is_a_value_error() -> None:
    assert issubclass(ProtobufError, ValueError)
