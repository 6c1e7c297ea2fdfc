"""Tests for the RBAC authorizer: bindings, scopes, subjects, superuser, errors and caching."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.cluster.apiserver.rbac import (
    CLUSTERROLEBINDINGS_KEY,
    CLUSTERROLES_KEY,
    ROLEBINDINGS_KEY,
    ROLES_KEY,
    Attributes,
    Authorizer,
    UserInfo,
    default_cluster_role_bindings,
    default_cluster_roles,
)


class MemorySource:
    """A tiny RBAC object store keyed like the server's storage keys."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {
            ROLES_KEY: [],
            ROLEBINDINGS_KEY: [],
            CLUSTERROLES_KEY: [],
            CLUSTERROLEBINDINGS_KEY: [],
        }
        self.calls = 0

    def list_objects(self, storage_key: str, namespace: str | None) -> list[dict[str, Any]]:
        self.calls += 1
        items = self.objects[storage_key]
        if namespace is None:
            return list(items)
        return [o for o in items if o["metadata"].get("namespace") == namespace]

    def add(self, obj: dict[str, Any]) -> None:
        key = {
            "Role": ROLES_KEY,
            "RoleBinding": ROLEBINDINGS_KEY,
            "ClusterRole": CLUSTERROLES_KEY,
            "ClusterRoleBinding": CLUSTERROLEBINDINGS_KEY,
        }[obj["kind"]]
        self.objects[key].append(obj)


def role(
    name: str, rules: list[dict[str, Any]], namespace: str | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": "Role" if namespace else "ClusterRole", "metadata": meta, "rules": rules}


def binding(
    name: str, ref_kind: str, ref_name: str, subjects: list[dict[str, Any]], namespace: str | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref_name},
        "subjects": subjects,
    }


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def group(name: str) -> dict[str, str]:
    return {"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def sa(name: str, namespace: str = "") -> dict[str, str]:
    s = {"kind": "ServiceAccount", "name": name}
    if namespace:
        s["namespace"] = namespace
    return s


ALICE = UserInfo("alice", groups=("system:authenticated",))
BOB = UserInfo("bob", groups=("devs", "system:authenticated"))
ROBOT = UserInfo("system:serviceaccount:ns-a:robot")  # groups deliberately left to the authorizer


@pytest.fixture()
def src() -> MemorySource:
    s = MemorySource()
    for obj in default_cluster_roles() + default_cluster_role_bindings():
        s.add(obj)
    s.add(
        role(
            "pvc-reader",
            [{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "watch"]}],
            namespace="ns-a",
        )
    )
    s.add(binding("alice-reads", "Role", "pvc-reader", [user("alice")], namespace="ns-a"))
    s.add(
        role(
            "dv-cloner",
            [{"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes/source"], "verbs": ["create"]}],
        )
    )
    s.add(binding("devs-clone", "ClusterRole", "dv-cloner", [group("devs")], namespace="ns-src"))
    s.add(
        role(
            "one-cm",
            [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": ["settings"],
                    "verbs": ["get", "update", "list"],
                }
            ],
            namespace="ns-a",
        )
    )
    s.add(binding("alice-one-cm", "Role", "one-cm", [user("alice")], namespace="ns-a"))
    s.add(binding("robot-edit", "ClusterRole", "edit", [sa("robot")], namespace="ns-a"))
    s.add(role("scaler", [{"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get", "update"]}]))
    s.add(binding("bob-scale", "ClusterRole", "scaler", [user("bob")]))
    s.add(role("metrics", [{"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}]))
    s.add(binding("bob-metrics", "ClusterRole", "metrics", [user("bob")]))
    return s


def res(
    u: UserInfo, verb: str, resource: str, ns: str = "", group_: str = "", name: str = "", sub: str = ""
) -> Attributes:
    return Attributes(
        user=u, verb=verb, namespace=ns, api_group=group_, resource=resource, name=name, subresource=sub
    )


CASES = [
    # (description, attributes, allowed)
    (
        "no bindings: denied",
        res(UserInfo("carol", groups=("system:authenticated",)), "get", "pods", "ns-a"),
        False,
    ),
    ("role grants in its namespace", res(ALICE, "list", "persistentvolumeclaims", "ns-a"), True),
    ("role in ns-a does not grant in ns-b", res(ALICE, "list", "persistentvolumeclaims", "ns-b"), False),
    ("role does not grant cluster-wide", res(ALICE, "list", "persistentvolumeclaims"), False),
    ("verb not in rule", res(ALICE, "delete", "persistentvolumeclaims", "ns-a", name="x"), False),
    ("wrong group", res(ALICE, "list", "persistentvolumeclaims", "ns-a", group_="apps"), False),
    (
        "clusterrole via rolebinding grants in binding ns",
        res(BOB, "create", "datavolumes", "ns-src", "cdi.kubevirt.io", name="dv", sub="source"),
        True,
    ),
    (
        "clusterrole via rolebinding: other ns denied",
        res(BOB, "create", "datavolumes", "ns-other", "cdi.kubevirt.io", name="dv", sub="source"),
        False,
    ),
    (
        "subresource rule does not grant parent",
        res(BOB, "create", "datavolumes", "ns-src", "cdi.kubevirt.io"),
        False,
    ),
    ("resourceNames: named get allowed", res(ALICE, "get", "configmaps", "ns-a", name="settings"), True),
    ("resourceNames: other name denied", res(ALICE, "get", "configmaps", "ns-a", name="other"), False),
    ("resourceNames: list without name denied", res(ALICE, "list", "configmaps", "ns-a"), False),
    (
        "*/scale matches any scale subresource",
        res(BOB, "update", "deployments", "x", "apps", name="d", sub="scale"),
        True,
    ),
    ("*/scale does not match the parent", res(BOB, "update", "deployments", "x", "apps", name="d"), False),
    (
        "*/scale does not match other subresources",
        res(BOB, "update", "deployments", "x", "apps", name="d", sub="status"),
        False,
    ),
    (
        "SA subject without namespace = binding ns",
        res(ROBOT, "create", "persistentvolumeclaims", "ns-a"),
        True,
    ),
    (
        "SA edit via aggregation covers CDI datavolumes",
        res(ROBOT, "create", "datavolumes", "ns-a", "cdi.kubevirt.io"),
        True,
    ),
    (
        "SA edit via aggregation covers VMs",
        res(ROBOT, "patch", "virtualmachines", "ns-a", "kubevirt.io", "vm"),
        True,
    ),
    (
        "SA edit via aggregation covers volumesnapshots",
        res(ROBOT, "create", "volumesnapshots", "ns-a", "snapshot.storage.k8s.io"),
        True,
    ),
    (
        "edit does not include roles",
        res(ROBOT, "create", "roles", "ns-a", "rbac.authorization.k8s.io"),
        False,
    ),
    ("SA edit not in other ns", res(ROBOT, "create", "persistentvolumeclaims", "ns-b"), False),
    (
        "basic-user: everyone may SSAR",
        res(UserInfo("carol"), "create", "selfsubjectaccessreviews", group_="authorization.k8s.io"),
        True,
    ),
    (
        "basic-user: SA may SSRR",
        res(ROBOT, "create", "selfsubjectrulesreviews", group_="authorization.k8s.io"),
        True,
    ),
    (
        "masters may do anything",
        res(UserInfo("root", groups=("system:masters",)), "delete", "nodes", name="n"),
        True,
    ),
]


@pytest.mark.parametrize(("attrs", "allowed"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_authorize_table(src: MemorySource, attrs: Attributes, allowed: bool) -> None:
    assert Authorizer(src).authorize(attrs).allowed is allowed


NON_RESOURCE = [
    (BOB, "/metrics", "get", True),
    (BOB, "/metrics/extra", "get", False),
    (BOB, "/logs/kube.log", "get", True),
    (BOB, "/logs", "get", False),  # "/logs/*" needs the slash
    (BOB, "/metrics", "post", False),
    (UserInfo("system:anonymous", groups=("system:unauthenticated",)), "/healthz", "get", True),
    (UserInfo("system:anonymous", groups=("system:unauthenticated",)), "/version", "get", True),
    (UserInfo("system:anonymous", groups=("system:unauthenticated",)), "/apis", "get", False),
    (ALICE, "/apis/cdi.kubevirt.io/v1beta1", "get", True),
    (ALICE, "/metrics", "get", False),
    (UserInfo("root", groups=("system:masters",)), "/anything", "put", True),
]


@pytest.mark.parametrize(("who", "path", "verb", "allowed"), NON_RESOURCE)
def test_non_resource_urls(src: MemorySource, who: UserInfo, path: str, verb: str, allowed: bool) -> None:
    attrs = Attributes(user=who, verb=verb, path=path, resource_request=False)
    assert Authorizer(src).authorize(attrs).allowed is allowed


def test_reasons_name_the_binding(src: MemorySource) -> None:
    authz = Authorizer(src)
    d = authz.authorize(res(ALICE, "get", "persistentvolumeclaims", "ns-a"))
    assert d.reason == 'RBAC: allowed by RoleBinding "alice-reads/ns-a" of Role "pvc-reader" to User "alice"'
    d = authz.authorize(res(ROBOT, "create", "persistentvolumeclaims", "ns-a"))
    assert d.reason == (
        'RBAC: allowed by RoleBinding "robot-edit/ns-a" of ClusterRole "edit" to ServiceAccount "robot/ns-a"'
    )
    d = authz.authorize(
        res(UserInfo("carol"), "create", "selfsubjectaccessreviews", group_="authorization.k8s.io")
    )
    assert d.reason == (
        'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole '
        '"system:basic-user" to Group "system:authenticated"'
    )
    assert authz.authorize(res(ALICE, "delete", "pods", "ns-a")).reason == ""


def test_service_account_subject_with_namespace_and_groups(src: MemorySource) -> None:
    src.add(role("secret-reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]))
    # A ClusterRoleBinding must name the SA's namespace; one naming another namespace does not apply.
    src.add(binding("robot-secrets", "ClusterRole", "secret-reader", [sa("robot", "ns-b")]))
    src.add(
        binding(
            "all-sas-in-a",
            "ClusterRole",
            "secret-reader",
            [group("system:serviceaccounts:ns-a")],
            namespace="ns-c",
        )
    )
    authz = Authorizer(src)
    assert not authz.authorize(res(ROBOT, "get", "secrets", "ns-z")).allowed
    assert authz.authorize(
        res(UserInfo("system:serviceaccount:ns-b:robot"), "get", "secrets", "ns-z")
    ).allowed
    # groups system:serviceaccounts:NS are implied by the SA user name
    assert authz.authorize(res(ROBOT, "get", "secrets", "ns-c")).allowed
    assert not authz.authorize(
        res(UserInfo("system:serviceaccount:ns-b:x"), "get", "secrets", "ns-c")
    ).allowed
    # A ClusterRoleBinding SA subject without a namespace never applies.
    src.add(binding("broken", "ClusterRole", "cluster-admin", [sa("robot")]))
    authz.invalidate()
    assert not authz.authorize(res(ROBOT, "delete", "nodes", name="n")).allowed


def test_unauthenticated_user_not_authenticated(src: MemorySource) -> None:
    anon = UserInfo("system:anonymous", groups=("system:unauthenticated",))
    attrs = res(anon, "create", "selfsubjectaccessreviews", group_="authorization.k8s.io")
    assert not Authorizer(src).authorize(attrs).allowed


def test_missing_role_reported_in_reason(src: MemorySource) -> None:
    src.add(binding("dangling", "Role", "nope", [user("dave")], namespace="ns-a"))
    src.add(binding("dangling-cr", "ClusterRole", "gone", [user("dave")]))
    d = Authorizer(src).authorize(res(UserInfo("dave"), "get", "pods", "ns-a"))
    assert not d.allowed
    assert d.reason == (
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
        'role.rbac.authorization.k8s.io "nope" not found]'
    )


def test_cache_until_invalidate(src: MemorySource) -> None:
    authz = Authorizer(src)
    carol = UserInfo("carol")
    attrs = res(carol, "get", "pods", "ns-a")
    assert not authz.authorize(attrs).allowed
    calls = src.calls
    assert not authz.authorize(attrs).allowed
    assert src.calls == calls  # answered from the cache
    src.add(binding("carol-view", "ClusterRole", "view", [user("carol")], namespace="ns-a"))
    assert not authz.authorize(attrs).allowed  # still cached: the server has not invalidated yet
    authz.invalidate()
    assert authz.authorize(attrs).allowed


def test_superuser_needs_no_bindings() -> None:
    authz = Authorizer(MemorySource())
    d = authz.authorize(res(UserInfo("admin", groups=("system:masters",)), "delete", "namespaces", name="x"))
    assert d.allowed


def test_unsupported_role_ref_kind(src: MemorySource) -> None:
    src.add(binding("weird", "Thing", "x", [user("eve")], namespace="ns-a"))
    d = Authorizer(src).authorize(res(UserInfo("eve"), "get", "pods", "ns-a"))
    assert d.reason == 'RBAC: unsupported role reference kind: "Thing"'
