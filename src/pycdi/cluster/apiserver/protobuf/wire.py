"""A minimal protobuf wire-format reader: splits a message into (field number, wire type, value) triples."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final


class ProtobufError(ValueError):
    """The body is not a well-formed protobuf message of a kind we can decode."""


# Wire types from the protobuf encoding spec. Groups (3, 4) are a proto2 relic that
# Kubernetes never emits, so meeting one is treated as corruption rather than skipped.
VARINT: Final = 0
FIXED64: Final = 1
LEN: Final = 2
FIXED32: Final = 5

FieldValue = int | bytes


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned base-128 varint at ``pos``; return (value, next position)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        # A 64-bit value takes at most 10 bytes; anything longer is garbage, and
        # stopping here keeps a hostile body from building a huge integer.
        if shift >= 70:
            raise ProtobufError("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, FieldValue]]:
    """Yield (field number, wire type, raw value) for every field in ``buf``, in wire order.

    Varints come back as unsigned ints, fixed32/fixed64 as unsigned little-endian ints,
    length-delimited fields as the bytes they carry (strings, bytes, sub-messages,
    packed repeated scalars and map entries all look alike on the wire).
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0 is invalid")
        value: FieldValue
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire_type == LEN:
            length, pos = read_varint(buf, pos)
            if pos + length > end:
                raise ProtobufError(f"field {number}: length {length} runs past the end of the message")
            value = buf[pos : pos + length]
            pos += length
        elif wire_type == FIXED64:
            if pos + 8 > end:
                raise ProtobufError(f"field {number}: truncated fixed64")
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        elif wire_type == FIXED32:
            if pos + 4 > end:
                raise ProtobufError(f"field {number}: truncated fixed32")
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            raise ProtobufError(f"field {number}: unsupported wire type {wire_type}")
        yield number, wire_type, value


def to_int64(value: int) -> int:
    """Reinterpret an unsigned varint as a two's-complement int64 (how int64/int32 negatives travel)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def to_int32(value: int) -> int:
    """Reinterpret a varint as int32; negative int32s are sign-extended to 10 bytes on the wire."""
    value &= (1 << 32) - 1
    return value - (1 << 32) if value >= 1 << 31 else value


# --- encoding: only what tests and fixtures need to build messages by hand -------------------


def encode_varint(value: int) -> bytes:
    """Encode a non-negative int, or a negative int64 as its 10-byte two's complement."""
    if value < 0:
        value &= (1 << 64) - 1
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def encode_field(number: int, value: int | bytes | str) -> bytes:
    """Encode one field: ints as varints, bytes/str as length-delimited."""
    if isinstance(value, bool | int):
        return encode_varint(number << 3 | VARINT) + encode_varint(int(value))
    data = value.encode() if isinstance(value, str) else value
    return encode_varint(number << 3 | LEN) + encode_varint(len(data)) + data
