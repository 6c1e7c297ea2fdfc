"""storage.k8s.io/v1 StorageClass validation: provisioner, parameters and the fields fixed at creation."""

from __future__ import annotations

from typing import Any

from ..errors import Cause
from .metadata import as_dict, as_list, as_str
from .names import forbidden, immutable, invalid, is_qualified_name, not_supported, required, too_long

Obj = dict[str, Any]

RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
MAX_PARAMETERS = 512
MAX_PARAMETERS_SIZE = 256 * 1024


def validate_storageclass(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    provisioner = as_str(obj.get("provisioner"))
    if not provisioner:
        causes.append(required("provisioner"))
    else:
        causes += [
            invalid("provisioner", provisioner.lower(), m) for m in is_qualified_name(provisioner.lower())
        ]
    params = as_dict(obj.get("parameters"))
    if len(params) > MAX_PARAMETERS:
        causes.append(too_long("parameters", MAX_PARAMETERS))
    size = 0
    for k, v in params.items():
        if not k:
            causes.append(invalid("parameters", k, "field can not be empty."))
        size += len(k) + len(as_str(v))
    if size > MAX_PARAMETERS_SIZE:
        causes.append(too_long("parameters", MAX_PARAMETERS_SIZE))
    policy = obj.get("reclaimPolicy")
    if policy not in (None, "") and policy not in RECLAIM_POLICIES:
        causes.append(not_supported("reclaimPolicy", policy, RECLAIM_POLICIES))
    mode = obj.get("volumeBindingMode")
    if mode is not None and mode not in BINDING_MODES:
        causes.append(not_supported("volumeBindingMode", mode, BINDING_MODES))
    for i, term in enumerate(as_list(obj.get("allowedTopologies"))):
        exprs = as_list(as_dict(term).get("matchLabelExpressions"))
        if not exprs:
            causes.append(
                required(
                    f"allowedTopologies[{i}].matchLabelExpressions", "must have at least one label expression"
                )
            )
        for j, expr in enumerate(exprs):
            path = f"allowedTopologies[{i}].matchLabelExpressions[{j}]"
            k = as_str(as_dict(expr).get("key"))
            causes += [invalid(f"{path}.key", k, m) for m in is_qualified_name(k)]
            if not as_list(as_dict(expr).get("values")):
                causes.append(required(f"{path}.values", "must specify as least one value"))
    return causes


def validate_storageclass_update(obj: Obj, old: Obj) -> list[Cause]:
    causes: list[Cause] = []
    if (obj.get("parameters") or {}) != (old.get("parameters") or {}):
        causes.append(forbidden("parameters", "updates to parameters are forbidden."))
    if obj.get("provisioner") != old.get("provisioner"):
        causes.append(forbidden("provisioner", "updates to provisioner are forbidden."))
    if (obj.get("reclaimPolicy") or "Delete") != (old.get("reclaimPolicy") or "Delete"):
        causes.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    causes += immutable(
        "volumeBindingMode",
        obj.get("volumeBindingMode") or "Immediate",
        old.get("volumeBindingMode") or "Immediate",
    )
    return causes
