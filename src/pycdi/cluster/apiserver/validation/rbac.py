"""rbac.authorization.k8s.io/v1 validation: Roles, ClusterRoles and their bindings, as kube checks them."""

from __future__ import annotations

from typing import Any

from ..errors import Cause
from .metadata import as_dict, as_list, as_str
from .names import go_quote, invalid, name_is_dns_subdomain, name_is_path_segment, not_supported, required

Obj = dict[str, Any]

GROUP = "rbac.authorization.k8s.io"


def _rule(rule: Obj, namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not as_list(rule.get("verbs")):
        causes.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            causes.append(
                invalid(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs")
            )
        if (
            as_list(rule.get("apiGroups"))
            or as_list(rule.get("resources"))
            or as_list(rule.get("resourceNames"))
        ):
            causes.append(
                invalid(
                    f"{path}.nonResourceURLs",
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return causes
    if not as_list(rule.get("apiGroups")):
        causes.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not as_list(rule.get("resources")):
        causes.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def validate_role(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(as_list(obj.get("rules"))):
        causes += _rule(as_dict(rule), True, f"rules[{i}]")
    return causes


def validate_clusterrole(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(as_list(obj.get("rules"))):
        causes += _rule(as_dict(rule), False, f"rules[{i}]")
    agg = obj.get("aggregationRule")
    if isinstance(agg, dict):
        selectors = as_list(agg.get("clusterRoleSelectors"))
        if not selectors:
            causes.append(
                required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                )
            )
        from .metadata import validate_label_selector

        for i, selector in enumerate(selectors):
            causes += validate_label_selector(as_dict(selector), f"aggregationRule.clusterRoleSelectors[{i}]")
    return causes


def _subject(subject: Obj, namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    name, kind = as_str(subject.get("name")), as_str(subject.get("kind"))
    group = subject.get("apiGroup")
    if not name:
        causes.append(required(f"{path}.name"))
    if kind == "ServiceAccount":
        if name:
            causes += [invalid(f"{path}.name", name, m) for m in name_is_dns_subdomain(name, False)]
        if as_str(group):
            causes.append(not_supported(f"{path}.apiGroup", as_str(group), ("",)))
        if not namespaced and not as_str(subject.get("namespace")):
            causes.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        # v1 defaulting fills the group for users and groups.
        if (GROUP if group is None else as_str(group)) != GROUP:
            causes.append(not_supported(f"{path}.apiGroup", as_str(group), (GROUP,)))
    else:
        causes.append(not_supported(f"{path}.kind", kind, ("ServiceAccount", "User", "Group")))
    return causes


def _binding(obj: Obj, cluster: bool) -> list[Cause]:
    causes: list[Cause] = []
    ref = as_dict(obj.get("roleRef"))
    if as_str(ref.get("apiGroup")) != GROUP:
        causes.append(not_supported("roleRef.apiGroup", as_str(ref.get("apiGroup")), (GROUP,)))
    kind = as_str(ref.get("kind"))
    if cluster:
        if kind != "ClusterRole":
            causes.append(not_supported("roleRef.kind", kind, ("ClusterRole",)))
    elif kind not in ("Role", "ClusterRole"):
        causes.append(not_supported("roleRef.kind", kind, ("Role", "ClusterRole")))
    name = as_str(ref.get("name"))
    if not name:
        causes.append(required("roleRef.name"))
    else:
        causes += [invalid("roleRef.name", name, m) for m in name_is_path_segment(name, False)]
    for i, subject in enumerate(as_list(obj.get("subjects"))):
        causes += _subject(as_dict(subject), not cluster, f"subjects[{i}]")
    return causes


def validate_rolebinding(obj: Obj) -> list[Cause]:
    return _binding(obj, cluster=False)


def validate_clusterrolebinding(obj: Obj) -> list[Cause]:
    return _binding(obj, cluster=True)


def validate_binding_update(obj: Obj, old: Obj) -> list[Cause]:
    ref, old_ref = as_dict(obj.get("roleRef")), as_dict(old.get("roleRef"))
    fields = ("apiGroup", "kind", "name")
    if tuple(as_str(ref.get(f)) for f in fields) == tuple(as_str(old_ref.get(f)) for f in fields):
        return []
    rendered = (
        f"rbac.RoleRef{{APIGroup:{go_quote(as_str(ref.get('apiGroup')))}, "
        f"Kind:{go_quote(as_str(ref.get('kind')))}, Name:{go_quote(as_str(ref.get('name')))}}}"
    )
    return [
        {
            "reason": "FieldValueInvalid",
            "field": "roleRef",
            "message": f"Invalid value: {rendered}: cannot change roleRef",
        }
    ]
