"""Request bodies: size limit, JSON/YAML/protobuf decoding, duplicate-field detection, and query options."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from .. import errors
from ..protobuf import (
    PROTOBUF_CONTENT_TYPE,
    ProtobufError,
    UnsupportedKindError,
    decode_protobuf_object,
    supported_kinds_text,
)
from ..service import APPLY_PATCH, WriteContext

#: kube-apiserver refuses request bodies over 3 MiB (its MaxRequestBodyBytes).
MAX_BODY_BYTES = 3 * 1024 * 1024
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
#: What create, update, delete and the reviews accept; anything else is 415 as in kube-apiserver.
OBJECT_MEDIA_TYPES = ("application/json", PROTOBUF_CONTENT_TYPE, *YAML_MEDIA_TYPES)


def _pairs_recording(duplicates: list[str]) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                duplicates.append(k)
            out[k] = v
        return out
    return hook


def media_type(request: web.Request) -> str:
    ctype = request.headers.get("Content-Type", "")
    return ctype.split(";", 1)[0].strip().lower() or "application/json"


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise errors.too_large(MAX_BODY_BYTES)
    # StreamReader.read(n) answers with what has arrived so far, not n bytes: a body that came in more than one
    # TCP segment or TLS record would be cut short. Read to the end, refusing once past the limit.
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BODY_BYTES + 1 - size):
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise errors.too_large(MAX_BODY_BYTES)
    return b"".join(parts)


async def decode_body(request: web.Request, ctx: WriteContext | None = None) -> Any:
    """Decode the body by Content-Type (JSON when absent, as kube-apiserver does)."""
    raw = await read_body(request)
    ctype = media_type(request)
    # PATCH bodies are checked against the patch types by the service; other verbs take objects only.
    if request.method != "PATCH" and ctype not in OBJECT_MEDIA_TYPES:
        raise errors.unsupported_media_type(ctype, ["application/json", "application/yaml", PROTOBUF_CONTENT_TYPE])
    if ctype == PROTOBUF_CONTENT_TYPE:
        try:
            return decode_protobuf_object(raw)
        except UnsupportedKindError as e:
            raise errors.APIError(415, "UnsupportedMediaType", f"{e}; protobuf bodies are accepted for "
                                  f"{supported_kinds_text()}, JSON and YAML for everything") from None
        except ProtobufError as e:
            raise errors.bad_request(f"the protobuf body of the request could not be decoded: {e}") from None
    if not raw.strip():
        raise errors.bad_request("the request body is empty: an object is required")
    if ctype in (*YAML_MEDIA_TYPES, APPLY_PATCH):
        try:
            docs = list(yaml.safe_load_all(raw))
        except yaml.YAMLError as e:
            raise errors.bad_request(f"the body of the request is not valid YAML: {e}") from None
        if len(docs) != 1:
            raise errors.bad_request("the body must contain exactly one YAML document")
        return docs[0]
    duplicates: list[str] = []
    try:
        value = json.loads(raw, object_pairs_hook=_pairs_recording(duplicates))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise errors.bad_request(f"the body of the request could not be decoded as JSON: {e}") from None
    if ctx is not None:
        ctx.duplicate_fields.extend(duplicates)
    return value


def write_context(request: web.Request, user: Any) -> WriteContext:
    q = request.query
    dry_run = q.getall("dryRun", [])
    for value in dry_run:
        if value != "All":
            raise errors.bad_request(f'unsupported dryRun value "{value}": only "All" is supported')
    validation = q.get("fieldValidation", "Warn") or "Warn"
    if validation not in FIELD_VALIDATION:
        raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{validation}"')
    manager = q.get("fieldManager", "")
    if len(manager) > 128:
        raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
    return WriteContext(user=user, dry_run=bool(dry_run), field_manager=manager, field_validation=validation)


def default_field_manager(request: web.Request) -> str:
    """kube names the manager after the client's User-Agent program when the request names none."""
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/", 1)[0][:128] or "unknown"
