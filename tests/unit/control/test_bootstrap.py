"""Seeding a fresh or restarted cluster."""

from __future__ import annotations

import copy
from typing import Any

from pycdi.cluster.control.bootstrap import AUTOUPDATE, SYSTEM_NAMESPACES, bootstrap

from .conftest import Cluster
from .test_crds import crd

RBAC = "rbac.authorization.k8s.io"


def role(name: str, verbs: list[str], autoupdate: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if autoupdate:
        meta["annotations"] = {AUTOUPDATE: "true"}
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": meta,
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}],
    }


def binding(name: str, role_name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "annotations": {AUTOUPDATE: "true"}},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "Group", "apiGroup": RBAC, "name": "system:authenticated"}],
    }


async def test_bootstrap_seeds_and_is_idempotent(cluster: Cluster) -> None:
    crds = [crd("widgets", "Widget")]
    roles = [role("viewer", ["get"]), role("pinned", ["get"], autoupdate=False)]
    bindings = [binding("viewer", "viewer")]
    await bootstrap(cluster.service, crds, roles, bindings)
    for ns in SYSTEM_NAMESPACES:
        assert cluster.get("", "namespaces", "", ns) is not None
    assert cluster.get(RBAC, "clusterrolebindings", "", "viewer") is not None
    stored_crd = cluster.get("apiextensions.k8s.io", "customresourcedefinitions", "", "widgets.example.com")
    assert stored_crd is not None

    revision = cluster.store.revision
    await bootstrap(cluster.service, crds, roles, bindings)
    assert cluster.store.revision == revision, "a second run with nothing changed writes nothing"

    # Changed defaults: autoupdate objects follow, opted-out ones are left alone; CRD specs follow.
    changed_crd = copy.deepcopy(crds[0])
    changed_crd["spec"]["names"]["shortNames"] = ["wd"]
    await bootstrap(
        cluster.service,
        [changed_crd],
        [role("viewer", ["get", "list"]), role("pinned", ["get", "list"], autoupdate=False)],
        bindings,
    )
    viewer = cluster.get(RBAC, "clusterroles", "", "viewer")
    assert viewer is not None and viewer["rules"][0]["verbs"] == ["get", "list"]
    pinned = cluster.get(RBAC, "clusterroles", "", "pinned")
    assert pinned is not None and pinned["rules"][0]["verbs"] == ["get"]
    updated = cluster.get("apiextensions.k8s.io", "customresourcedefinitions", "", "widgets.example.com")
    assert updated is not None and updated["spec"]["names"]["shortNames"] == ["wd"]
    assert updated["metadata"]["uid"] == stored_crd["metadata"]["uid"]
