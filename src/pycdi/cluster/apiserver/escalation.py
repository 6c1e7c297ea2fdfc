"""RBAC escalation prevention: nobody grants, through a Role or a binding, rights they do not hold themselves.

As kube-apiserver's RBAC registry: writing a Role/ClusterRole needs every rule it contains (or the `escalate`
verb on it); writing a RoleBinding/ClusterRoleBinding needs every rule of the referenced role in the binding's
scope (or the `bind` verb on that role).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from . import errors
from .admission import CREATE, UPDATE, AdmissionRequest
from .rbac import Attributes, Authorizer, UserInfo, aggregated_rules
from .store import Store

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLE_KINDS = {"roles", "clusterroles"}
BINDING_KINDS = {"rolebindings", "clusterrolebindings"}


def _strings(rule: Mapping[str, Any], key: str) -> list[str]:
    value = rule.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def rule_requests(rule: Mapping[str, Any], user: UserInfo, namespace: str) -> Iterator[Attributes]:
    """Every (verb, group, resource, name) a rule grants, as requests the holder must be allowed to make."""
    verbs = _strings(rule, "verbs")
    urls = _strings(rule, "nonResourceURLs")
    for verb in verbs:
        for url in urls:
            yield Attributes(user=user, verb=verb, path=url, resource_request=False)
    names = _strings(rule, "resourceNames") or [""]
    for verb in verbs:
        for group in _strings(rule, "apiGroups"):
            for combined in _strings(rule, "resources"):
                resource, _, subresource = combined.partition("/")
                for name in names:
                    yield Attributes(user=user, verb=verb, namespace=namespace, api_group=group, resource=resource,
                                     subresource=subresource, name=name)


def _rule_text(rule: Mapping[str, Any]) -> str:
    """A rule the way kube prints it in escalation errors: {APIGroups:["..."], Resources:["..."], Verbs:["..."]}."""
    parts = []
    for key, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("resourceNames", "ResourceNames"),
                       ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")):
        values = _strings(rule, key)
        if values:
            parts.append(f"{label}:{json.dumps(values, separators=(',', ':'))}")
    return "{" + ", ".join(parts) + "}"


class EscalationCheck:
    """Admission plug-in refusing RBAC writes that would grant the writer more than it holds."""

    name = "RBACEscalation"

    def __init__(self, authorizer: Authorizer, store: Store) -> None:
        self._authorizer = authorizer
        self._store = store

    def handles(self, request: AdmissionRequest) -> bool:
        return (request.info.group == RBAC_GROUP and request.operation in (CREATE, UPDATE)
                and not request.subresource and request.info.plural in ROLE_KINDS | BINDING_KINDS)

    async def mutate(self, request: AdmissionRequest) -> None:
        return None

    def _allowed(self, attrs: Attributes) -> bool:
        return self._authorizer.authorize(attrs).allowed

    def _missing(self, rules: list[dict[str, Any]], user: UserInfo, namespace: str) -> list[dict[str, Any]]:
        return [rule for rule in rules
                if not all(self._allowed(a) for a in rule_requests(rule, user, namespace))]

    async def validate(self, request: AdmissionRequest) -> None:
        obj = request.object or {}
        user, info, namespace = request.user, request.info, request.namespace
        if "system:masters" in user.groups:
            return
        if info.plural in ROLE_KINDS:
            if self._allowed(Attributes(user=user, verb="escalate", namespace=namespace, api_group=RBAC_GROUP,
                                        resource=info.plural, name=request.name)):
                return
            rules = obj.get("rules") or []
            if obj.get("aggregationRule"):
                rules = aggregated_rules(obj, list(self._store.iter_objects(f"{RBAC_GROUP}/clusterroles")))
        else:
            ref = obj.get("roleRef") or {}
            kind, role_name = ref.get("kind", ""), ref.get("name", "")
            role_plural = "clusterroles" if kind == "ClusterRole" else "roles"
            if self._allowed(Attributes(user=user, verb="bind", namespace=namespace, api_group=RBAC_GROUP,
                                        resource=role_plural, name=role_name)):
                return
            role = self._store.get(f"{RBAC_GROUP}/{role_plural}", namespace if kind == "Role" else "", role_name)
            if role is None:
                return  # a binding to a missing role grants nothing (yet); kube allows it too
            rules = role.get("rules") or []
            if role.get("aggregationRule"):
                rules = aggregated_rules(role, list(self._store.iter_objects(f"{RBAC_GROUP}/clusterroles")))
        missing = self._missing([r for r in rules if isinstance(r, dict)], user, namespace)
        if missing:
            groups = json.dumps(list(user.groups), separators=(",", ":"))
            listing = "\n".join(_rule_text(r) for r in missing)
            raise errors.forbidden_message(
                f'{info.group_resource} "{request.name}" is forbidden: user "{user.name}" (groups={groups}) is '
                f"attempting to grant RBAC permissions not currently held:\n{listing}",
                info.group, info.plural, request.name)
