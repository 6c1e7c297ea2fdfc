"""Built-in validation of objects on create and update: kube-apiserver's rules, causes and messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Cause
from ..resources import ResourceInfo
from . import apiextensions, core, pods, rbac, storage, volumes
from .metadata import validate_object_meta, validate_object_meta_update
from .names import (
    NameFn,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    name_is_path_segment,
)

Obj = dict[str, Any]
Check = Callable[[Obj], list[Cause]]
UpdateCheck = Callable[[Obj, Obj], list[Cause]]

# (group, plural) -> metadata.name rule; anything not listed uses DNS-1123 subdomains, as most kube types do.
_NAME_RULES: dict[tuple[str, str], NameFn] = {
    ("", "namespaces"): name_is_dns_label,
    ("", "services"): name_is_dns1035_label,
    ("rbac.authorization.k8s.io", "roles"): name_is_path_segment,
    ("rbac.authorization.k8s.io", "clusterroles"): name_is_path_segment,
    ("rbac.authorization.k8s.io", "rolebindings"): name_is_path_segment,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): name_is_path_segment,
}

_CREATE: dict[tuple[str, str], Check] = {
    ("", "namespaces"): core.validate_namespace,
    ("", "pods"): pods.validate_pod,
    ("", "persistentvolumeclaims"): volumes.validate_pvc,
    ("", "persistentvolumes"): volumes.validate_pv,
    ("", "configmaps"): core.validate_configmap,
    ("", "secrets"): core.validate_secret,
    ("", "services"): core.validate_service,
    ("", "endpoints"): core.validate_endpoints,
    ("", "events"): core.validate_event,
    ("", "nodes"): core.validate_node,
    ("events.k8s.io", "events"): core.validate_event_v1,
    ("coordination.k8s.io", "leases"): core.validate_lease,
    ("storage.k8s.io", "storageclasses"): storage.validate_storageclass,
    ("rbac.authorization.k8s.io", "roles"): rbac.validate_role,
    ("rbac.authorization.k8s.io", "clusterroles"): rbac.validate_clusterrole,
    ("rbac.authorization.k8s.io", "rolebindings"): rbac.validate_rolebinding,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): rbac.validate_clusterrolebinding,
    ("apiextensions.k8s.io", "customresourcedefinitions"): apiextensions.validate_crd,
}

_UPDATE: dict[tuple[str, str], UpdateCheck] = {
    ("", "pods"): pods.validate_pod_update,
    ("", "persistentvolumeclaims"): volumes.validate_pvc_update,
    ("", "persistentvolumes"): volumes.validate_pv_update,
    ("", "configmaps"): core.validate_configmap_update,
    ("", "secrets"): core.validate_secret_update,
    ("", "services"): core.validate_service_update,
    ("events.k8s.io", "events"): core.validate_event_v1_update,
    ("storage.k8s.io", "storageclasses"): storage.validate_storageclass_update,
    ("rbac.authorization.k8s.io", "rolebindings"): rbac.validate_binding_update,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): rbac.validate_binding_update,
    ("apiextensions.k8s.io", "customresourcedefinitions"): apiextensions.validate_crd_update,
}


def name_rule(info: ResourceInfo, obj: Obj) -> NameFn:
    """The function kube validates this resource's metadata.name (and generateName) with."""
    if (info.group, info.plural) == ("apiextensions.k8s.io", "customresourcedefinitions"):
        rule: NameFn = apiextensions.crd_name_fn(obj)
        return rule
    return _NAME_RULES.get((info.group, info.plural), name_is_dns_subdomain)


def validate(info: ResourceInfo, obj: Obj, old: Obj | None) -> list[Cause]:
    """All causes for which kube-apiserver would answer 422 Invalid; [] when the object is valid.

    `old` is None on create. On update the create rules run on the new object too (as kube's
    ValidateXUpdate functions do) followed by the update-only rules. Unknown resources, custom
    resources included, get the metadata checks only (their schema is validated elsewhere).
    """
    gr = (info.group, info.plural)
    causes: list[Cause] = []
    if gr == ("", "events"):
        # core/v1 Events skip ObjectMeta validation for backwards compatibility; only a name is needed.
        if not (obj.get("metadata") or {}).get("name"):
            causes += validate_object_meta(obj, info.namespaced, name_is_path_segment)[:1]
    else:
        # Built-in types also refuse unprefixed finalizer names other than kube's own; CRDs and custom
        # resources are validated by apimachinery's generic rules only.
        kube_finalizers = not info.custom and info.group != "apiextensions.k8s.io"
        causes += validate_object_meta(obj, info.namespaced, name_rule(info, obj), kube_finalizers)
    if old is not None:
        causes += validate_object_meta_update(obj, old)
    check = None if info.custom else _CREATE.get(gr)
    if check is not None:
        causes += check(obj)
    update = None if info.custom else _UPDATE.get(gr)
    if old is not None and update is not None:
        causes += update(obj, old)
    return _dedupe(causes)


def _dedupe(causes: list[Cause]) -> list[Cause]:
    seen: set[tuple[str, str, str]] = set()
    unique: list[Cause] = []
    for cause in causes:
        k = (cause.get("reason", ""), cause.get("field", ""), cause.get("message", ""))
        if k not in seen:
            seen.add(k)
            unique.append(cause)
    return unique


__all__ = ["name_rule", "validate"]
