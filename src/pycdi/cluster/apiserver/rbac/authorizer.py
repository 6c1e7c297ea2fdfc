"""The RBAC authorizer: resolves a user's bindings to rules and decides requests as kube's RBAC does."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .rules import (
    SUPERUSER_GROUP,
    Attributes,
    Decision,
    PolicyRule,
    UserInfo,
    clean_rule,
    effective_groups,
    effective_rules,
    rule_allows,
)

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLES_KEY = f"{RBAC_GROUP}/roles"
ROLEBINDINGS_KEY = f"{RBAC_GROUP}/rolebindings"
CLUSTERROLES_KEY = f"{RBAC_GROUP}/clusterroles"
CLUSTERROLEBINDINGS_KEY = f"{RBAC_GROUP}/clusterrolebindings"

# Compiled rule lists are cached per (user, groups, namespace); bound it so a stream of distinct
# users (e.g. many ServiceAccounts) cannot grow memory without limit.
_MAX_CACHED_SUBJECTS = 4096


class RBACSource(Protocol):
    def list_objects(self, storage_key: str, namespace: str | None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class _Grant:
    """One rule reachable by a user, with the kube-style description of the binding that grants it."""

    source: str
    rule: PolicyRule


@dataclass(frozen=True)
class _Resolved:
    grants: tuple[_Grant, ...]
    errors: tuple[str, ...]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _subjects(binding: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    subjects = binding.get("subjects")
    return [s for s in subjects if isinstance(s, Mapping)] if isinstance(subjects, list) else []


def _applies(subject: Mapping[str, Any], name: str, groups: tuple[str, ...], namespace: str) -> bool:
    kind = subject.get("kind")
    sname = str(subject.get("name", ""))
    if kind == "User":
        return name == sname
    if kind == "Group":
        return sname in groups
    if kind == "ServiceAccount":
        # A RoleBinding may name a ServiceAccount without a namespace: it means its own namespace.
        sa_ns = str(subject.get("namespace") or namespace)
        return bool(sa_ns) and name == f"system:serviceaccount:{sa_ns}:{sname}"
    return False


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind = str(subject.get("kind", ""))
    name = str(subject.get("name", ""))
    if kind == "ServiceAccount":
        # kube prints "name/namespace" here (sic), and the reason strings are matched by tools.
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


class Authorizer:
    """Kubernetes RBAC over the Role/RoleBinding/ClusterRole/ClusterRoleBinding objects of a store.

    Objects are read through `source` lazily and kept until `invalidate()`, which the server calls
    after every write to an RBAC object.
    """

    def __init__(self, source: RBACSource) -> None:
        self._source = source
        self._lock = threading.RLock()
        self._generation = 0
        self._clear()

    def _clear(self) -> None:
        self._clusterroles: dict[str, dict[str, Any]] | None = None
        self._clusterrolebindings: list[dict[str, Any]] | None = None
        self._effective_clusterroles: dict[str, list[PolicyRule]] = {}
        self._roles: dict[str, dict[str, dict[str, Any]]] = {}
        self._rolebindings: dict[str, list[dict[str, Any]]] = {}
        self._resolved: OrderedDict[tuple[str, tuple[str, ...], str], _Resolved] = OrderedDict()

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._clear()

    # --- public API -------------------------------------------------------------------------

    def authorize(self, attrs: Attributes) -> Decision:
        groups = effective_groups(attrs.user)
        if SUPERUSER_GROUP in groups:
            # kube-apiserver puts a privileged-group authorizer before RBAC; it allows with no reason.
            return Decision(True, "")
        resolved = self._resolve(attrs.user.name, groups, attrs.namespace)
        for grant in resolved.grants:
            if rule_allows(attrs, grant.rule):
                return Decision(True, f"RBAC: allowed by {grant.source}")
        return Decision(False, _error_reason(resolved.errors))

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[
            list[dict[str, Any]], list[dict[str, Any]], bool]:
        """(resourceRules, nonResourceRules, incomplete) as SelfSubjectRulesReview status has them."""
        resource, non_resource, incomplete, _ = self.rules_review(user, namespace)
        return resource, non_resource, incomplete

    def rules_review(self, user: UserInfo, namespace: str) -> tuple[
            list[dict[str, Any]], list[dict[str, Any]], bool, str]:
        """rules_for plus `status.evaluationError` (missing roles referenced by the user's bindings).

        kube's RBAC resolver reports such errors but still says incomplete=false, so do we.
        """
        resolved = self._resolve(user.name, effective_groups(user), namespace)
        resource: list[dict[str, Any]] = []
        non_resource: list[dict[str, Any]] = []
        for grant in resolved.grants:
            rule = grant.rule
            if rule.get("resources"):
                item: dict[str, Any] = {"verbs": list(rule.get("verbs", []))}
                for key in ("apiGroups", "resources", "resourceNames"):
                    if rule.get(key):
                        item[key] = list(rule[key])
                resource.append(item)
            if rule.get("nonResourceURLs"):
                non_resource.append({"verbs": list(rule.get("verbs", [])),
                                     "nonResourceURLs": list(rule["nonResourceURLs"])})
        return resource, non_resource, False, _aggregate(resolved.errors)

    # --- resolution -------------------------------------------------------------------------

    def _resolve(self, name: str, groups: tuple[str, ...], namespace: str) -> _Resolved:
        key = (name, groups, namespace)
        with self._lock:
            cached = self._resolved.get(key)
            if cached is not None:
                self._resolved.move_to_end(key)
                return cached
            generation = self._generation
            resolved = self._compute(name, groups, namespace)
            # Only cache if no invalidate() ran while we were reading the source.
            if generation == self._generation:
                self._resolved[key] = resolved
                if len(self._resolved) > _MAX_CACHED_SUBJECTS:
                    self._resolved.popitem(last=False)
            return resolved

    def _compute(self, name: str, groups: tuple[str, ...], namespace: str) -> _Resolved:
        grants: list[_Grant] = []
        errors: list[str] = []
        for crb in self._cluster_role_bindings():
            subject = next((s for s in _subjects(crb) if _applies(s, name, groups, "")), None)
            if subject is None:
                continue
            rules, err = self._role_ref_rules(crb, "")
            if err:
                errors.append(err)
                continue
            ref = crb.get("roleRef") or {}
            source = (f'ClusterRoleBinding "{_meta(crb).get("name", "")}" of {ref.get("kind", "")} '
                      f'"{ref.get("name", "")}" to {_describe_subject(subject, "")}')
            grants.extend(_Grant(source, r) for r in rules)
        if namespace:
            for rb in self._role_bindings(namespace):
                subject = next((s for s in _subjects(rb) if _applies(s, name, groups, namespace)), None)
                if subject is None:
                    continue
                rules, err = self._role_ref_rules(rb, namespace)
                if err:
                    errors.append(err)
                    continue
                ref = rb.get("roleRef") or {}
                source = (f'RoleBinding "{_meta(rb).get("name", "")}/{namespace}" of {ref.get("kind", "")} '
                          f'"{ref.get("name", "")}" to {_describe_subject(subject, namespace)}')
                grants.extend(_Grant(source, r) for r in rules)
        return _Resolved(tuple(grants), tuple(errors))

    def _role_ref_rules(self, binding: Mapping[str, Any], namespace: str) -> tuple[list[PolicyRule], str]:
        ref = binding.get("roleRef")
        ref = ref if isinstance(ref, Mapping) else {}
        kind = str(ref.get("kind", ""))
        role_name = str(ref.get("name", ""))
        if kind == "Role":
            role = self._namespace_roles(namespace).get(role_name) if namespace else None
            if role is None:
                return [], f'role.{RBAC_GROUP} "{role_name}" not found'
            rules = role.get("rules")
            return ([clean_rule(r) for r in rules if isinstance(r, Mapping)] if isinstance(rules, list)
                    else []), ""
        if kind == "ClusterRole":
            effective = self._cluster_role_rules(role_name)
            if effective is None:
                return [], f'clusterrole.{RBAC_GROUP} "{role_name}" not found'
            return effective, ""
        return [], f'unsupported role reference kind: "{kind}"'

    # --- cached reads from the source ---------------------------------------------------------

    def _cluster_roles(self) -> dict[str, dict[str, Any]]:
        if self._clusterroles is None:
            self._clusterroles = {str(_meta(r).get("name", "")): r
                                  for r in self._source.list_objects(CLUSTERROLES_KEY, None)}
        return self._clusterroles

    def _cluster_role_rules(self, name: str) -> list[PolicyRule] | None:
        cached = self._effective_clusterroles.get(name)
        if cached is not None:
            return cached
        roles = self._cluster_roles()
        role = roles.get(name)
        if role is None:
            return None
        rules = effective_rules(role, roles)
        self._effective_clusterroles[name] = rules
        return rules

    def _cluster_role_bindings(self) -> list[dict[str, Any]]:
        if self._clusterrolebindings is None:
            self._clusterrolebindings = list(self._source.list_objects(CLUSTERROLEBINDINGS_KEY, None))
        return self._clusterrolebindings

    def _namespace_roles(self, namespace: str) -> dict[str, dict[str, Any]]:
        roles = self._roles.get(namespace)
        if roles is None:
            listed = self._source.list_objects(ROLES_KEY, namespace)
            roles = {str(_meta(r).get("name", "")): r for r in listed}
            self._roles[namespace] = roles
        return roles

    def _role_bindings(self, namespace: str) -> list[dict[str, Any]]:
        bindings = self._rolebindings.get(namespace)
        if bindings is None:
            bindings = list(self._source.list_objects(ROLEBINDINGS_KEY, namespace))
            self._rolebindings[namespace] = bindings
        return bindings


def _aggregate(errors: tuple[str, ...]) -> str:
    """Formats errors like apimachinery's utilerrors.NewAggregate."""
    if not errors:
        return ""
    unique = list(dict.fromkeys(errors))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def _error_reason(errors: tuple[str, ...]) -> str:
    return f"RBAC: {_aggregate(errors)}" if errors else ""
