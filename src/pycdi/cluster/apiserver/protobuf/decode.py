"""Turn a ``k8s\\x00``-framed Kubernetes protobuf body into the dict its JSON form would decode to."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any, Final

from .schemas import MESSAGES, TOP_LEVEL_MESSAGES, Field, Schema
from .wire import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    ProtobufError,
    iter_fields,
    to_int32,
    to_int64,
)

PROTOBUF_CONTENT_TYPE: Final = "application/vnd.kubernetes.protobuf"
MAGIC: Final = b"k8s\x00"

SUPPORTED_KINDS: Final[frozenset[tuple[str, str]]] = frozenset(TOP_LEVEL_MESSAGES)


class UnsupportedKindError(ProtobufError):
    """A well-formed envelope naming a kind we have no field table for (answer 415, not 400)."""

    def __init__(self, api_version: str, kind: str) -> None:
        self.api_version = api_version
        self.kind = kind
        super().__init__(
            f"protobuf decoding of {kind} ({api_version or 'no apiVersion'}) is not supported; "
            f"supported kinds: {supported_kinds_text()}"
        )


def supported_kinds_text() -> str:
    """The accepted kinds as one sorted, human-readable line (for a 415 message)."""
    return ", ".join(f"{api_version} {kind}" for api_version, kind in sorted(SUPPORTED_KINDS))


def decode_protobuf_object(body: bytes) -> dict[str, Any]:
    """Decode a protobuf request body (magic + runtime.Unknown envelope) into a JSON-shaped dict.

    The result carries ``apiVersion`` and ``kind`` from the envelope, like a JSON body would.
    Raises UnsupportedKindError (a ProtobufError) for a kind not in SUPPORTED_KINDS, and
    ProtobufError for a malformed body.
    """
    if not body.startswith(MAGIC):
        raise ProtobufError("protobuf body does not start with the k8s\\x00 magic prefix")
    api_version, kind, raw, encoding = _read_unknown(body[len(MAGIC) :])
    if encoding:
        # kube-apiserver's own protobuf serializer never sets it; nothing sends compressed raw.
        raise ProtobufError(f"unsupported protobuf contentEncoding {encoding!r}")
    if not kind:
        raise ProtobufError("protobuf envelope has no kind")
    message = TOP_LEVEL_MESSAGES.get((api_version, kind))
    if message is None:
        raise UnsupportedKindError(api_version, kind)
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj.update(decode_message(raw, message))
    return obj


def _read_unknown(envelope: bytes) -> tuple[str, str, bytes, str]:
    """Read runtime.Unknown {typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4}."""
    api_version = kind = encoding = ""
    raw = b""
    for number, wire_type, value in iter_fields(envelope):
        if wire_type != LEN:
            continue  # Unknown has no scalar fields; skip rather than guess.
        assert isinstance(value, bytes)
        if number == 1:
            for sub_number, sub_type, sub_value in iter_fields(value):
                if sub_type == LEN and sub_number in (1, 2):
                    assert isinstance(sub_value, bytes)
                    text = _text(sub_value, "typeMeta")
                    if sub_number == 1:
                        api_version = text
                    else:
                        kind = text
        elif number == 2:
            raw = value
        elif number == 3:
            encoding = _text(value, "contentEncoding")
    return api_version, kind, raw, encoding


def decode_message(data: bytes, message: str) -> dict[str, Any]:
    """Decode ``data`` as the named message from schemas.MESSAGES; unknown fields are skipped.

    The schemas are not recursive, so nesting depth is bounded by them, not by the body.
    """
    schema: Schema = MESSAGES[message]
    out: dict[str, Any] = {}
    for number, wire_type, value in iter_fields(data):
        field = schema.get(number)
        if field is None:
            continue  # a field newer than our tables: ignored, as a JSON decoder would drop it
        path = f"{message}.{field.name}"
        if field.kind == "map":
            key, item = _map_entry(_need_len(value, wire_type, path), field.ref, path)
            out.setdefault(field.name, {})[key] = item
        elif field.repeated:
            # Only strings and messages repeat in these schemas, so packed scalars never occur.
            out.setdefault(field.name, []).append(_value(field, wire_type, value, path))
        else:
            decoded = _value(field, wire_type, value, path)
            # Last one wins for a repeated singular field, as protobuf specifies for scalars.
            out[field.name] = decoded
    return {name: v for name, v in out.items() if not _drop(schema, name, v)}


def _drop(schema: Schema, name: str, value: Any) -> bool:
    """Whether JSON's omitempty would hide this value (zero scalars, zero times)."""
    if value is None:
        return True  # a zero metav1.Time, which JSON shows as null or omits
    if isinstance(value, dict | list):
        return False  # present sub-messages stay even when empty, as Go emits non-pointer structs
    field = next(f for f in schema.values() if f.name == name)
    return not field.keep and value in ("", 0, False)


def _value(field: Field, wire_type: int, value: int | bytes, path: str) -> Any:
    if field.kind == "message":
        return decode_message(_need_len(value, wire_type, path), field.ref)
    if field.kind == "time":
        return _time(_need_len(value, wire_type, path), path)
    if field.kind == "fieldsv1":
        return _fields_v1(_need_len(value, wire_type, path), path)
    if field.kind == "strlist":
        return _strlist(_need_len(value, wire_type, path), path)
    return _scalar(field, wire_type, value, path)


def _scalar(field: Field, wire_type: int, value: int | bytes, path: str) -> Any:
    if field.kind == "string":
        return _text(_need_len(value, wire_type, path), path)
    if field.kind == "bytes":
        return base64.b64encode(_need_len(value, wire_type, path)).decode("ascii")
    if wire_type == LEN or isinstance(value, bytes):
        raise ProtobufError(f"{path}: expected a number, got a length-delimited field")
    if field.kind == "bool":
        return value != 0
    if field.kind == "int32":
        return to_int32(value)
    # int64 also accepts fixed64 on the wire; harmless, and tolerant of unusual writers.
    if wire_type in (VARINT, FIXED64, FIXED32):
        return to_int64(value)
    raise ProtobufError(f"{path}: unexpected wire type {wire_type}")


def _need_len(value: int | bytes, wire_type: int, path: str) -> bytes:
    if wire_type != LEN or not isinstance(value, bytes):
        raise ProtobufError(f"{path}: expected a length-delimited field, got wire type {wire_type}")
    return value


def _text(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"{path}: string is not valid UTF-8") from exc


def _map_entry(entry: bytes, value_kind: str, path: str) -> tuple[str, Any]:
    """A map entry is a message {key=1, value=2}; a missing part means the zero value."""
    key = ""
    item: Any = {"string": "", "bytes": "", "strlist": []}[value_kind]
    for number, wire_type, value in iter_fields(entry):
        if number == 1:
            key = _text(_need_len(value, wire_type, path), path)
        elif number == 2:
            data = _need_len(value, wire_type, path)
            if value_kind == "string":
                item = _text(data, f"{path}[{key}]")
            elif value_kind == "bytes":
                item = base64.b64encode(data).decode("ascii")
            else:
                item = _strlist(data, path)
    return key, item


def _strlist(data: bytes, path: str) -> list[str]:
    return [_text(_need_len(v, t, path), path) for n, t, v in iter_fields(data) if n == 1]


def _time(data: bytes, path: str) -> str | None:
    """metav1.Time {seconds=1, nanos=2} -> RFC 3339 in UTC, whole seconds as Kubernetes' JSON has.

    Go writes the zero time as an empty message, which decodes to None (JSON null).
    """
    if not data:
        return None
    seconds = 0
    for number, wire_type, value in iter_fields(data):
        if number == 1 and wire_type == VARINT:
            assert isinstance(value, int)
            seconds = to_int64(value)
    try:
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ProtobufError(f"{path}: time {seconds}s is out of range") from exc
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fields_v1(data: bytes, path: str) -> Any:
    """metav1.FieldsV1 {Raw=1}: Raw is JSON text, which the JSON form embeds as an object."""
    raw = b""
    for number, wire_type, value in iter_fields(data):
        if number == 1:
            raw = _need_len(value, wire_type, path)
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ProtobufError(f"{path}: fieldsV1 is not JSON") from exc
