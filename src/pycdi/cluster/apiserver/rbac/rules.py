"""RBAC request attributes and the pure rule-matching logic of Kubernetes RBAC (no storage)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SUPERUSER_GROUP = "system:masters"
AUTHENTICATED_GROUP = "system:authenticated"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"

PolicyRule = dict[str, Any]


@dataclass(frozen=True)
class UserInfo:
    """The authenticated identity of a request, as kube's `user.Info`."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __hash__(self) -> int:
        # `extra` is a mapping (unhashable); identity for caching is name + groups.
        return hash((self.name, self.uid, self.groups))


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do, as kube's `authorizer.Attributes`."""

    user: UserInfo
    verb: str
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass(frozen=True)
class Decision:
    """Allowed or not, with the reason kube puts into SubjectAccessReview `status.reason`."""

    allowed: bool
    reason: str = ""


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) for `system:serviceaccount:NS:NAME`, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    parts = username[len(SERVICE_ACCOUNT_PREFIX):].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def effective_groups(user: UserInfo) -> tuple[str, ...]:
    """The user's groups plus those kube's authenticators always add.

    kube-apiserver adds `system:authenticated` to every non-anonymous user and the ServiceAccount
    authenticator adds `system:serviceaccounts[:NS]`; adding them here keeps RBAC correct even when a
    caller (a SubjectAccessReview, an impersonation) hands us only the user name.
    """
    groups = list(user.groups)
    seen = set(groups)

    def add(group: str) -> None:
        if group not in seen:
            seen.add(group)
            groups.append(group)

    sa = split_service_account_username(user.name)
    if sa is not None:
        add(SERVICE_ACCOUNTS_GROUP)
        add(f"{SERVICE_ACCOUNTS_GROUP}:{sa[0]}")
    if user.name != ANONYMOUS_USER and UNAUTHENTICATED_GROUP not in seen:
        add(AUTHENTICATED_GROUP)
    return tuple(groups)


def _strings(rule: Mapping[str, Any], key: str) -> list[str]:
    value = rule.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def verb_matches(rule: Mapping[str, Any], verb: str) -> bool:
    return any(v == "*" or v == verb for v in _strings(rule, "verbs"))


def api_group_matches(rule: Mapping[str, Any], group: str) -> bool:
    return any(g == "*" or g == group for g in _strings(rule, "apiGroups"))


def resource_matches(rule: Mapping[str, Any], combined: str, subresource: str) -> bool:
    for res in _strings(rule, "resources"):
        if res == "*" or res == combined:
            return True
        # `*/scale` grants the scale subresource of every resource, but never the parent itself.
        if subresource and res.startswith("*/") and res[2:] == subresource:
            return True
    return False


def resource_name_matches(rule: Mapping[str, Any], name: str) -> bool:
    names = _strings(rule, "resourceNames")
    # An empty request name only matches an unrestricted rule: that is why a rule with
    # resourceNames never grants list, watch, create or deletecollection.
    return not names or name in names


def non_resource_url_matches(rule: Mapping[str, Any], path: str) -> bool:
    for url in _strings(rule, "nonResourceURLs"):
        if url == "*" or url == path:
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Mapping[str, Any]) -> bool:
    """Whether one PolicyRule grants the request (kube's `RuleAllows`)."""
    if attrs.resource_request:
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return (
            verb_matches(rule, attrs.verb)
            and api_group_matches(rule, attrs.api_group)
            and resource_matches(rule, combined, attrs.subresource)
            and resource_name_matches(rule, attrs.name)
        )
    return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)


def clean_rule(rule: Mapping[str, Any]) -> PolicyRule:
    """A PolicyRule with only its five API fields, empty lists dropped (as it round-trips in JSON)."""
    out: PolicyRule = {}
    for key in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"):
        values = _strings(rule, key)
        if values or key == "verbs":
            out[key] = values
    return out


# --- label selectors (for aggregationRule.clusterRoleSelectors) ---------------------------------


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: all matchLabels and all matchExpressions must hold."""
    match_labels = selector.get("matchLabels") or {}
    if isinstance(match_labels, Mapping):
        for key, value in match_labels.items():
            if labels.get(key) != value:
                return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, Mapping):
            return False
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        if op == "In":
            if key not in labels or labels[key] not in values:
                return False
        elif op == "NotIn":
            if key in labels and labels[key] in values:
                return False
        elif op == "Exists":
            if key not in labels:
                return False
        elif op == "DoesNotExist":
            if key in labels:
                return False
        else:
            # kube refuses to build a selector with an unknown operator; it then matches nothing.
            return False
    return True


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def _own_rules(obj: Mapping[str, Any]) -> list[PolicyRule]:
    rules = obj.get("rules")
    return [clean_rule(r) for r in rules if isinstance(r, Mapping)] if isinstance(rules, list) else []


def is_aggregated(clusterrole: Mapping[str, Any]) -> bool:
    return isinstance(clusterrole.get("aggregationRule"), Mapping)


def aggregated_rules(clusterrole: Mapping[str, Any],
                     all_clusterroles: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rules an aggregated ClusterRole has, computed from the roles its selectors pick.

    Mirrors kube's clusterrole-aggregation controller (per selector, matching roles sorted by name,
    itself skipped, rules de-duplicated) but evaluated on demand and recursively, so that `admin`
    sees `edit`'s aggregated rules without waiting for a controller to converge. A role without an
    aggregationRule just has its own rules.
    """
    roles = {_name(r): r for r in all_clusterroles}
    return effective_rules(clusterrole, roles)


def effective_rules(clusterrole: Mapping[str, Any],
                    roles_by_name: Mapping[str, Mapping[str, Any]]) -> list[PolicyRule]:
    """aggregated_rules with the ClusterRoles already indexed by name."""
    return _effective(clusterrole, roles_by_name, set())


def _effective(role: Mapping[str, Any], roles: Mapping[str, Mapping[str, Any]],
               visiting: set[str]) -> list[PolicyRule]:
    agg = role.get("aggregationRule")
    if not isinstance(agg, Mapping):
        return _own_rules(role)
    name = _name(role)
    visiting = visiting | {name}
    result: list[PolicyRule] = []
    for selector in agg.get("clusterRoleSelectors") or []:
        if not isinstance(selector, Mapping):
            continue
        matched = sorted((n for n, r in roles.items() if selector_matches(selector, _labels(r))))
        for other in matched:
            if other == name:
                continue
            # A cycle (A aggregates B aggregates A) would spin the upstream controller forever;
            # we take the stored rules of the role already being expanded instead.
            other_rules = (_own_rules(roles[other]) if other in visiting
                           else _effective(roles[other], roles, visiting))
            for rule in other_rules:
                if rule not in result:
                    result.append(rule)
    return result
