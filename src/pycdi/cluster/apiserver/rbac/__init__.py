"""Kubernetes RBAC for the embedded API server: authorizer, rule matching and default policy."""

from .authorizer import (
    CLUSTERROLEBINDINGS_KEY,
    CLUSTERROLES_KEY,
    ROLEBINDINGS_KEY,
    ROLES_KEY,
    Authorizer,
    RBACSource,
)
from .defaults import default_cluster_role_bindings, default_cluster_roles
from .rules import (
    Attributes,
    Decision,
    UserInfo,
    aggregated_rules,
    effective_groups,
    rule_allows,
    selector_matches,
    service_account_username,
    split_service_account_username,
)

__all__ = [
    "CLUSTERROLEBINDINGS_KEY",
    "CLUSTERROLES_KEY",
    "ROLEBINDINGS_KEY",
    "ROLES_KEY",
    "Attributes",
    "Authorizer",
    "Decision",
    "RBACSource",
    "UserInfo",
    "aggregated_rules",
    "default_cluster_role_bindings",
    "default_cluster_roles",
    "effective_groups",
    "rule_allows",
    "selector_matches",
    "service_account_username",
    "split_service_account_username",
]
