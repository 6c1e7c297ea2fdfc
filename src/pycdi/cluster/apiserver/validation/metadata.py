"""ObjectMeta validation on create and update, as apimachinery's ValidateObjectMeta(Update) does it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Cause
from .names import (
    NameFn,
    forbidden,
    go_quote,
    go_value,
    invalid,
    is_label_value,
    is_qualified_name,
    name_is_dns_label,
    required,
    too_long,
)

Obj = dict[str, Any]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def validate_labels(labels: Mapping[str, Any], path: str) -> list[Cause]:
    """Keys are qualified names, values label values; kube reports both at the map's path."""
    causes: list[Cause] = []
    for k, v in labels.items():
        causes += [invalid(path, k, m) for m in is_qualified_name(k)]
        causes += [invalid(path, as_str(v), m) for m in is_label_value(as_str(v))]
    return causes


def validate_annotations(annotations: Mapping[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for k in annotations:
        # Annotation keys are qualified names except that case does not matter.
        causes += [invalid(path, k, m) for m in is_qualified_name(k.lower())]
    size = sum(len(k.encode()) + len(as_str(v).encode()) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def _owner_repr(ref: Mapping[str, Any]) -> str:
    def ptr(v: Any) -> str:
        return "(*bool)(nil)" if v is None else f"&{str(bool(v)).lower()}"

    return (
        f"v1.OwnerReference{{APIVersion:{go_quote(as_str(ref.get('apiVersion')))}, "
        f"Kind:{go_quote(as_str(ref.get('kind')))}, Name:{go_quote(as_str(ref.get('name')))}, "
        f"UID:{go_quote(as_str(ref.get('uid')))}, Controller:{ptr(ref.get('controller'))}, "
        f"BlockOwnerDeletion:{ptr(ref.get('blockOwnerDeletion'))}}}"
    )


def _invalid_raw(field: str, rendered: str, detail: str) -> Cause:
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {rendered}: {detail}", "field": field}


def validate_owner_references(refs: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    first_controller = ""
    for ref in refs:
        ref = as_dict(ref)
        api_version, kind = as_str(ref.get("apiVersion")), as_str(ref.get("kind"))
        group, _, version = api_version.rpartition("/") if "/" in api_version else ("", "", api_version)
        if not version:
            causes.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            causes.append(invalid(f"{path}.kind", kind, "kind must not be empty"))
        if not as_str(ref.get("name")):
            causes.append(invalid(f"{path}.name", as_str(ref.get("name")), "name must not be empty"))
        if not as_str(ref.get("uid")):
            causes.append(invalid(f"{path}.uid", as_str(ref.get("uid")), "uid must not be empty"))
        if group == "" and version == "v1" and kind == "Event":
            causes.append(
                _invalid_raw(path, _owner_repr(ref), "/v1, Kind=Event is disallowed from being an owner")
            )
        if ref.get("controller") is True:
            current = f"{kind}/{as_str(ref.get('name'))}"
            if first_controller:
                rendered = "[]v1.OwnerReference{" + ", ".join(_owner_repr(as_dict(r)) for r in refs) + "}"
                causes.append(
                    _invalid_raw(
                        path,
                        rendered,
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return causes


def validate_finalizers(finalizers: list[Any], path: str, kube_names: bool) -> list[Cause]:
    """Qualified names; built-in types also refuse unprefixed names other than kube's own."""
    causes: list[Cause] = []
    names = [as_str(f) for f in finalizers]
    for name in names:
        causes += [invalid(path, name, m) for m in is_qualified_name(name)]
    if "orphan" in names and "foregroundDeletion" in names:
        causes.append(invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set"))
    if kube_names:
        for name in names:
            if "/" not in name and name not in STANDARD_FINALIZERS:
                causes.append(
                    invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified")
                )
    return causes


def validate_object_meta(
    obj: Obj, namespaced: bool, name_fn: NameFn, kube_finalizers: bool = True
) -> list[Cause]:
    """ValidateObjectMeta on create (name generation already done by the caller)."""
    meta = as_dict(obj.get("metadata"))
    causes: list[Cause] = []
    generate_name = as_str(meta.get("generateName"))
    if generate_name:
        causes += [invalid("metadata.generateName", generate_name, m) for m in name_fn(generate_name, True)]
    name = as_str(meta.get("name"))
    if not name:
        causes.append(required("metadata.name", "name or generateName is required"))
    else:
        causes += [invalid("metadata.name", name, m) for m in name_fn(name, False)]
    namespace = as_str(meta.get("namespace"))
    if namespaced:
        if not namespace:
            causes.append(required("metadata.namespace"))
        else:
            causes += [
                invalid("metadata.namespace", namespace, m) for m in name_is_dns_label(namespace, False)
            ]
    elif namespace:
        causes.append(forbidden("metadata.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool) and generation < 0:
        causes.append(invalid("metadata.generation", generation, "must be greater than or equal to 0"))
    causes += _common(meta, kube_finalizers)
    return causes


def _common(meta: Obj, kube_finalizers: bool) -> list[Cause]:
    causes = validate_labels(as_dict(meta.get("labels")), "metadata.labels")
    causes += validate_annotations(as_dict(meta.get("annotations")), "metadata.annotations")
    causes += validate_owner_references(as_list(meta.get("ownerReferences")), "metadata.ownerReferences")
    causes += validate_finalizers(as_list(meta.get("finalizers")), "metadata.finalizers", kube_finalizers)
    return causes


def validate_object_meta_update(obj: Obj, old: Obj) -> list[Cause]:
    """ValidateObjectMetaUpdate's own checks: identity fields immutable, no new finalizers once deleting.

    The format checks of the new metadata are validate_object_meta's, which runs on updates too.
    """
    meta, old_meta = as_dict(obj.get("metadata")), as_dict(old.get("metadata"))
    causes: list[Cause] = []
    if old_meta.get("deletionTimestamp"):
        old_finalizers = {as_str(f) for f in as_list(old_meta.get("finalizers"))}
        extra = sorted({as_str(f) for f in as_list(meta.get("finalizers"))} - old_finalizers)
        if extra:
            causes.append(
                forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is "
                    f"being deleted, found new finalizers {go_value(extra)}",
                )
            )
    generation, old_generation = meta.get("generation"), old_meta.get("generation")
    if isinstance(generation, int) and isinstance(old_generation, int) and generation < old_generation:
        causes.append(invalid("metadata.generation", generation, "must not be decremented"))
    for fld in ("name", "namespace"):
        if as_str(meta.get(fld)) != as_str(old_meta.get(fld)):
            causes.append(invalid(f"metadata.{fld}", as_str(meta.get(fld)), "field is immutable"))
    # kube fills an omitted uid and always keeps the stored creationTimestamp before validating.
    for fld in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        new_value = meta.get(fld)
        if new_value not in (None, "") and new_value != old_meta.get(fld):
            causes.append(invalid(f"metadata.{fld}", new_value, "field is immutable"))
    return causes


def validate_label_selector(selector: Obj, path: str) -> list[Cause]:
    """metav1.LabelSelector as ValidateLabelSelector checks it."""
    causes = validate_labels(as_dict(selector.get("matchLabels")), f"{path}.matchLabels")
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        expr = as_dict(expr)
        epath = f"{path}.matchExpressions[{i}]"
        op, values = expr.get("operator"), as_list(expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                causes.append(
                    required(f"{epath}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(
                    forbidden(
                        f"{epath}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            causes.append(invalid(f"{epath}.operator", as_str(op), "not a valid selector operator"))
        k = as_str(expr.get("key"))
        causes += [invalid(f"{epath}.key", k, m) for m in is_qualified_name(k)]
        for j, v in enumerate(values):
            causes += [invalid(f"{epath}.values[{j}]", as_str(v), m) for m in is_label_value(as_str(v))]
    return causes
