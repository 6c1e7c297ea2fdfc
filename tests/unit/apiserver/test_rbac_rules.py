"""Tests for RBAC aggregation, label selectors, default policy and SelfSubjectRulesReview output."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.cluster.apiserver.rbac import (
    Attributes,
    Authorizer,
    UserInfo,
    aggregated_rules,
    default_cluster_role_bindings,
    default_cluster_roles,
    effective_groups,
    selector_matches,
)

from .test_rbac import ALICE, MemorySource, binding, role, sa, src, user  # noqa: F401  (fixture)


def _by_name(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs}


SELECTORS = [
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({}, {"x": "y"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": ""}, False),
    (
        {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
        {"a": "1"},
        False,
    ),
]


@pytest.mark.parametrize(("selector", "labels", "expected"), SELECTORS)
def test_selector_matches(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_aggregated_rules_union_sorted_deduplicated() -> None:
    r1 = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
    r2 = {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}
    agg = {
        "metadata": {"name": "agg", "labels": {"pick": "yes"}},
        "aggregationRule": {
            "clusterRoleSelectors": [
                {"matchLabels": {"pick": "yes"}},
                {"matchExpressions": [{"key": "also", "operator": "Exists"}]},
            ]
        },
        "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
    }  # own rules are ignored
    roles: list[dict[str, Any]] = [
        agg,
        {"metadata": {"name": "b", "labels": {"pick": "yes"}}, "rules": [r2, r1]},
        {"metadata": {"name": "a", "labels": {"pick": "yes"}}, "rules": [r1]},
        {
            "metadata": {"name": "c", "labels": {"also": ""}},
            "rules": [r1, {"verbs": ["get"], "nonResourceURLs": ["/x"]}],
        },
        {
            "metadata": {"name": "d", "labels": {}},
            "rules": [{"verbs": ["delete"], "resources": ["pods"], "apiGroups": [""]}],
        },
    ]
    assert aggregated_rules(agg, roles) == [r1, r2, {"verbs": ["get"], "nonResourceURLs": ["/x"]}]


def test_aggregation_is_recursive_and_cycle_safe() -> None:
    roles = _by_name(default_cluster_roles())
    admin = aggregated_rules(roles["admin"], list(roles.values()))
    view = aggregated_rules(roles["view"], list(roles.values()))
    # admin gets edit's aggregate which gets view's aggregate
    for rule in view:
        assert rule in admin
    cyc = [
        {
            "metadata": {"name": "x", "labels": {"y": "1"}},
            "rules": [{"verbs": ["x"]}],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "1"}}]},
        },
        {
            "metadata": {"name": "y", "labels": {"x": "1"}},
            "rules": [{"verbs": ["y"]}],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"y": "1"}}]},
        },
    ]
    assert aggregated_rules(cyc[0], cyc) == [{"verbs": ["x"]}]


def test_aggregated_role_sees_roles_created_later(src: MemorySource) -> None:  # noqa: F811
    src.add(binding("alice-view", "ClusterRole", "view", [user("alice")], namespace="ns-a"))
    authz = Authorizer(src)
    attrs = Attributes(user=ALICE, verb="list", namespace="ns-a", api_group="example.com", resource="widgets")
    assert not authz.authorize(attrs).allowed
    src.add(
        role(
            "widgets-view",
            [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["list"]}],
            labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"},
        )
    )
    authz.invalidate()
    assert authz.authorize(attrs).allowed


def _allowed(
    authz: Authorizer, clusterrole: str, verb: str, group: str, resource: str, sub: str = "", name: str = ""
) -> bool:
    u = UserInfo(f"tester-{clusterrole}")
    return authz.authorize(
        Attributes(
            user=u, verb=verb, namespace="ns", api_group=group, resource=resource, subresource=sub, name=name
        )
    ).allowed


DEFAULT_GRANTS = [
    # (clusterrole, verb, group, resource, subresource, allowed)
    ("admin", "create", "rbac.authorization.k8s.io", "rolebindings", "", True),
    ("edit", "create", "rbac.authorization.k8s.io", "rolebindings", "", False),
    ("edit", "create", "", "persistentvolumeclaims", "", True),
    ("view", "create", "", "persistentvolumeclaims", "", False),
    ("view", "list", "", "persistentvolumeclaims", "", True),
    ("view", "get", "", "secrets", "", False),
    ("edit", "get", "", "secrets", "", True),
    ("admin", "create", "cdi.kubevirt.io", "datavolumes", "source", True),
    ("edit", "create", "cdi.kubevirt.io", "datavolumes", "source", True),
    ("edit", "delete", "cdi.kubevirt.io", "datavolumes", "", True),
    ("view", "list", "cdi.kubevirt.io", "datavolumes", "", True),
    ("view", "delete", "cdi.kubevirt.io", "datavolumes", "", False),
    ("view", "get", "cdi.kubevirt.io", "storageprofiles", "", True),
    ("edit", "create", "upload.cdi.kubevirt.io", "uploadtokenrequests", "", True),
    ("view", "create", "upload.cdi.kubevirt.io", "uploadtokenrequests", "", False),
    ("admin", "deletecollection", "kubevirt.io", "virtualmachines", "", True),
    ("edit", "deletecollection", "kubevirt.io", "virtualmachines", "", False),
    ("view", "watch", "kubevirt.io", "virtualmachines", "", True),
    ("edit", "update", "subresources.kubevirt.io", "virtualmachines", "start", True),
    ("view", "update", "subresources.kubevirt.io", "virtualmachines", "start", False),
    ("admin", "delete", "snapshot.storage.k8s.io", "volumesnapshots", "", True),
    ("view", "get", "snapshot.storage.k8s.io", "volumesnapshots", "", True),
    ("view", "delete", "snapshot.storage.k8s.io", "volumesnapshots", "", False),
    ("cdi.kubevirt.io:config-reader", "list", "cdi.kubevirt.io", "cdiconfigs", "", True),
]


@pytest.mark.parametrize(("clusterrole", "verb", "group", "resource", "sub", "allowed"), DEFAULT_GRANTS)
def test_default_roles_through_rolebinding(
    clusterrole: str, verb: str, group: str, resource: str, sub: str, allowed: bool
) -> None:
    s = MemorySource()
    for obj in default_cluster_roles():
        s.add(obj)
    s.add(binding("b", "ClusterRole", clusterrole, [user(f"tester-{clusterrole}")], namespace="ns"))
    assert _allowed(Authorizer(s), clusterrole, verb, group, resource, sub, name="x") is allowed


def test_default_objects_are_well_formed() -> None:
    roles = default_cluster_roles()
    names = [r["metadata"]["name"] for r in roles]
    assert len(names) == len(set(names))
    for needed in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "cdi.kubevirt.io:admin",
        "cdi.kubevirt.io:edit",
        "cdi.kubevirt.io:view",
        "cdi.kubevirt.io:config-reader",
        "kubevirt.io:admin",
        "kubevirt.io:edit",
        "kubevirt.io:view",
    ]:
        assert needed in names
    by_name = _by_name(roles)
    assert (
        by_name["cdi.kubevirt.io:edit"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"]
        == "true"
    )
    for r in roles:
        assert r["apiVersion"] == "rbac.authorization.k8s.io/v1" and r["kind"] == "ClusterRole"
        for rule in r["rules"]:
            assert rule["verbs"]
    bindings = _by_name(default_cluster_role_bindings())
    assert bindings["cluster-admin"]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}
    ]
    public = {s["name"] for s in bindings["system:public-info-viewer"]["subjects"]}
    assert public == {"system:authenticated", "system:unauthenticated"}
    for b in bindings.values():
        assert b["roleRef"]["name"] in by_name
    # each call returns fresh objects, so callers may mutate them
    default_cluster_roles()[0]["metadata"]["name"] = "changed"
    assert default_cluster_roles()[0]["metadata"]["name"] == "cluster-admin"


def test_rules_for_matches_ssrr_shape(src: MemorySource) -> None:  # noqa: F811
    resource, non_resource, incomplete = Authorizer(src).rules_for(ALICE, "ns-a")
    assert incomplete is False
    # cluster-wide bindings come first (basic-user), then the namespace's
    assert {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    } in resource
    assert resource[-2:] == [
        {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["persistentvolumeclaims"]},
        {
            "verbs": ["get", "update", "list"],
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["settings"],
        },
    ]
    urls = [u for r in non_resource for u in r["nonResourceURLs"]]
    assert "/healthz" in urls and "/apis/*" in urls
    assert all(set(r) == {"verbs", "nonResourceURLs"} for r in non_resource)
    # another namespace has only the cluster-wide rules
    other, _, _ = Authorizer(src).rules_for(ALICE, "ns-b")
    assert {
        "verbs": ["get", "list", "watch"],
        "apiGroups": [""],
        "resources": ["persistentvolumeclaims"],
    } not in other


def test_rules_for_masters_and_errors(src: MemorySource) -> None:  # noqa: F811
    authz = Authorizer(src)
    resource, non_resource, _ = authz.rules_for(UserInfo("root", groups=("system:masters",)), "x")
    assert {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]} in resource
    assert {"verbs": ["*"], "nonResourceURLs": ["*"]} in non_resource
    src.add(binding("dangling", "Role", "nope", [sa("robot")], namespace="ns-a"))
    authz.invalidate()
    _, _, incomplete, error = authz.rules_review(UserInfo("system:serviceaccount:ns-a:robot"), "ns-a")
    assert incomplete is False
    assert error == 'role.rbac.authorization.k8s.io "nope" not found'


@pytest.mark.parametrize(
    ("u", "expected"),
    [
        (UserInfo("alice"), ("system:authenticated",)),
        (UserInfo("alice", groups=("system:authenticated", "x")), ("system:authenticated", "x")),
        (UserInfo("system:anonymous", groups=("system:unauthenticated",)), ("system:unauthenticated",)),
        (
            UserInfo("system:serviceaccount:ns:sa"),
            ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"),
        ),
    ],
)
def test_effective_groups(u: UserInfo, expected: tuple[str, ...]) -> None:
    assert effective_groups(u) == expected
