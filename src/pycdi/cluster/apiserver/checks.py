"""The checks every write goes through: schema pruning (per fieldValidation), types, defaults and validation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from . import validation as builtin_validation
from .resources import ResourceInfo
from .schema import apply_defaults, prune, strict_decoding_message, unknown_field_messages, validate

if TYPE_CHECKING:
    from .service import WriteContext

Obj = dict[str, Any]


def schema_checks(info: ResourceInfo, obj: Obj, ctx: WriteContext) -> None:
    """Structural schema: prune unknown fields (per fieldValidation); for CRs also default and validate.

    Built-ins are pruned only, as kube's typed decoding drops (and with Strict/Warn reports) unknown
    fields; their defaults and validation are the strategies' and the validation package's job.
    """
    for dup in ctx.duplicate_fields:
        _unknown_or_duplicate(info, f'duplicate field "{dup}"', ctx)
    if not info.schema:
        return
    unknown = prune(obj, info.schema)
    meta_schema = info.schema.get("properties", {}).get("metadata")
    if not info.custom and isinstance(obj.get("metadata"), dict) and isinstance(meta_schema, dict):
        # The root prune only knows ObjectMeta's field names; a built-in's ObjectMeta is typed all
        # the way down (an owner reference's typo is an unknown field too).
        unknown = sorted(unknown + [f"metadata.{p}" for p in prune(obj["metadata"], meta_schema)])
    if unknown:
        if ctx.field_validation == "Strict":
            raise errors.bad_request(strict_decoding_message(info.kind, info.version, unknown))
        if ctx.field_validation == "Warn":
            ctx.warnings.extend(unknown_field_messages(unknown))
    if not info.custom:
        _check_builtin_types(info, obj)
        return
    apply_defaults(obj, info.schema)
    causes = validate(obj, info.schema)
    if causes:
        raise errors.invalid(info.group, info.kind, obj.get("metadata", {}).get("name", ""), causes)

def _check_builtin_types(info: ResourceInfo, obj: Obj) -> None:
    """A built-in's fields must have their JSON types: kube's typed decoding refuses a list where a map goes.

    Only type mismatches count here (null decodes to the zero value, as in Go); every other rule of a built-in
    is the validation package's.
    """
    assert info.schema is not None
    wrong = [c for c in validate(obj, info.schema)
             if c.get("reason") == "FieldValueTypeInvalid" and '"null"' not in c.get("message", "")]
    if wrong:
        detail = "; ".join(f'{c["field"]}: {c["message"]}' for c in wrong[:5])
        raise errors.bad_request(f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                                 f"{detail}")

def _unknown_or_duplicate(info: ResourceInfo, what: str, ctx: WriteContext) -> None:
    if ctx.field_validation == "Strict":
        raise errors.bad_request(
            f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
            f"strict decoding error: {what}")
    if ctx.field_validation == "Warn":
        ctx.warnings.append(what)

def validate_object(info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
    causes = builtin_validation.validate(info, obj, old)
    if causes:
        raise errors.invalid(info.group, info.kind, obj.get("metadata", {}).get("name", ""), causes)
