"""Decoding of the protobuf request bodies some kubectl commands send (typed create, auth can-i/whoami)."""

from .decode import (
    MAGIC,
    PROTOBUF_CONTENT_TYPE,
    SUPPORTED_KINDS,
    UnsupportedKindError,
    decode_message,
    decode_protobuf_object,
    supported_kinds_text,
)
from .wire import ProtobufError

__all__ = [
    "MAGIC",
    "PROTOBUF_CONTENT_TYPE",
    "SUPPORTED_KINDS",
    "ProtobufError",
    "UnsupportedKindError",
    "decode_message",
    "decode_protobuf_object",
    "supported_kinds_text",
]
