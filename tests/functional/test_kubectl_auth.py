"""Authentication and authorization through the real kubectl: users, tokens, RBAC, can-i, whoami, impersonation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import Cluster


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = unique("ka")
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def tokenless_kubeconfig(cluster: Cluster, path: Path) -> Path:
    """The admin kubeconfig with its credentials removed, so only `--token` authenticates."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {}
    path.write_text(yaml.safe_dump(config))
    return path


def grant_pod_reader(cluster: Cluster, ns: str, user: str) -> None:
    cluster.kubectl("create", "role", "pod-reader", "-n", ns, "--verb=get,list,watch", "--resource=pods")
    cluster.kubectl("create", "rolebinding", f"{user}-reads-pods", "-n", ns, "--role=pod-reader", f"--user={user}")


def test_admin_can_do_anything(cluster: Cluster, ns: str) -> None:
    assert cluster.kubectl("auth", "can-i", "create", "datavolumes.cdi.kubevirt.io", "-n", ns).stdout.strip() == "yes"
    assert cluster.kubectl("auth", "can-i", "delete", "nodes").stdout.strip() == "yes"
    assert cluster.kubectl("auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_whoami_admin(cluster: Cluster) -> None:
    out = cluster.kubectl("auth", "whoami").stdout
    assert out.splitlines()[0].split() == ["ATTRIBUTE", "VALUE"]
    assert "system:masters" in out
    whoami = cluster.kubectl_json("auth", "whoami")
    assert whoami["kind"] == "SelfSubjectReview"
    assert "system:masters" in whoami["status"]["userInfo"]["groups"]


def test_new_user_is_forbidden(cluster: Cluster, ns: str) -> None:
    user = unique("bob")
    config = cluster.new_user(user, ns)
    denied = cluster.kubectl("get", "pods", "-n", ns, kubeconfig=config, check=False)
    assert denied.returncode == 1
    assert (f'Error from server (Forbidden): pods is forbidden: User "{user}" cannot list resource "pods" '
            f'in API group "" in the namespace "{ns}"') in denied.stderr
    denied = cluster.kubectl("get", "datavolumes", "-n", ns, kubeconfig=config, check=False)
    assert (f'datavolumes.cdi.kubevirt.io is forbidden: User "{user}" cannot list resource "datavolumes" '
            f'in API group "cdi.kubevirt.io" in the namespace "{ns}"') in denied.stderr
    denied = cluster.kubectl("create", "configmap", "x", "-n", ns, kubeconfig=config, check=False)
    assert (f'configmaps is forbidden: User "{user}" cannot create resource "configmaps" in API group "" '
            f'in the namespace "{ns}"') in denied.stderr
    denied = cluster.kubectl("get", "namespaces", kubeconfig=config, check=False)
    assert (f'namespaces is forbidden: User "{user}" cannot list resource "namespaces" in API group "" '
            'at the cluster scope') in denied.stderr
    # the status the server sent is a real Status object
    token = yaml.safe_load(config.read_text())["users"][0]["user"]["token"]
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/pods", token=token)
    assert status == 403
    assert body["kind"] == "Status" and body["reason"] == "Forbidden" and body["code"] == 403
    assert body["details"] == {"kind": "pods"}


def test_unknown_token_is_unauthorized(cluster: Cluster, tmp_path: Path) -> None:
    config = tokenless_kubeconfig(cluster, tmp_path / "anon")
    result = cluster.kubectl("--token=not-a-real-token", "get", "pods", kubeconfig=config, check=False)
    assert result.returncode == 1
    assert "error: You must be logged in to the server (Unauthorized)" in result.stderr
    status, body, _ = cluster.request("GET", "/api/v1/namespaces/default/pods", token="not-a-real-token")
    assert status == 401 and body["reason"] == "Unauthorized"


def test_can_i_for_new_user_then_rolebinding(cluster: Cluster, ns: str) -> None:
    user = unique("carol")
    config = cluster.new_user(user, ns)
    no = cluster.kubectl("auth", "can-i", "list", "pods", "-n", ns, kubeconfig=config, check=False)
    assert no.returncode == 1 and no.stdout.strip() == "no"
    grant_pod_reader(cluster, ns, user)
    assert cluster.kubectl("auth", "can-i", "list", "pods", "-n", ns, kubeconfig=config).stdout.strip() == "yes"
    assert cluster.kubectl("auth", "can-i", "delete", "pods", "-n", ns, kubeconfig=config,
                           check=False).stdout.strip() == "no"
    # the binding is namespaced: nothing elsewhere
    assert cluster.kubectl("auth", "can-i", "list", "pods", "-n", "default", kubeconfig=config,
                           check=False).stdout.strip() == "no"
    out = cluster.kubectl("get", "pods", "-n", ns, kubeconfig=config)
    assert out.returncode == 0
    listing = cluster.kubectl("auth", "can-i", "--list", "-n", ns, kubeconfig=config).stdout
    assert listing.splitlines()[0].split()[:4] == ["Resources", "Non-Resource", "URLs", "Resource"]
    pods = [line.split() for line in listing.splitlines() if line.startswith("pods ")]
    assert pods == [["pods", "[]", "[]", "[get", "list", "watch]"]]
    assert any(line.startswith("selfsubjectaccessreviews.authorization.k8s.io") for line in listing.splitlines())


def test_whoami_for_user(cluster: Cluster, ns: str) -> None:
    user = unique("dave")
    config = cluster.new_user(user, ns)
    whoami = cluster.kubectl_json("auth", "whoami", kubeconfig=config)
    info = whoami["status"]["userInfo"]
    assert info["username"] == user
    assert "system:authenticated" in info["groups"]
    assert "system:masters" not in info["groups"]
    out = cluster.kubectl("auth", "whoami", kubeconfig=config).stdout
    assert [line.split()[:2] for line in out.splitlines()][1] == ["Username", user]


def test_create_token_is_a_bearer_token(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    cluster.kubectl("create", "serviceaccount", "robot", "-n", ns)
    token = cluster.kubectl("create", "token", "robot", "-n", ns).stdout.strip()
    assert token.count(".") == 2  # a JWT
    config = tokenless_kubeconfig(cluster, tmp_path / "robot")
    whoami = cluster.kubectl_json("--token", token, "auth", "whoami", kubeconfig=config)
    info = whoami["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{ns}:robot"
    assert {"system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"} <= set(info["groups"])
    denied = cluster.kubectl("--token", token, "get", "pods", "-n", ns, kubeconfig=config, check=False)
    assert (f'pods is forbidden: User "system:serviceaccount:{ns}:robot" cannot list resource "pods"'
            in denied.stderr)
    cluster.kubectl("create", "role", "lister", "-n", ns, "--verb=list", "--resource=configmaps")
    cluster.kubectl("create", "rolebinding", "robot-lists", "-n", ns, "--role=lister",
                    f"--serviceaccount={ns}:robot")
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=token)
    assert status == 200 and body["kind"] == "ConfigMapList"
    assert cluster.kubectl("--token", token, "auth", "can-i", "list", "configmaps", "-n", ns,
                           kubeconfig=config).stdout.strip() == "yes"


def test_create_token_for_missing_serviceaccount(cluster: Cluster, ns: str) -> None:
    result = cluster.kubectl("create", "token", "nobody", "-n", ns, check=False)
    assert result.returncode == 1
    assert 'serviceaccounts "nobody" not found' in result.stderr


def test_impersonation_can_i(cluster: Cluster, ns: str) -> None:
    user = unique("alice")
    cluster.new_user(user, ns)
    no = cluster.kubectl("auth", "can-i", "list", "pods", "-n", ns, "--as", user, check=False)
    assert no.stdout.strip() == "no"
    grant_pod_reader(cluster, ns, user)
    assert cluster.kubectl("auth", "can-i", "list", "pods", "-n", ns, "--as", user).stdout.strip() == "yes"
    denied = cluster.kubectl("get", "configmaps", "-n", ns, "--as", user, check=False)
    assert f'configmaps is forbidden: User "{user}" cannot list resource "configmaps"' in denied.stderr
    assert cluster.kubectl("get", "pods", "-n", ns, "--as", user).returncode == 0
    whoami = cluster.kubectl_json("auth", "whoami", "--as", user)
    assert whoami["status"]["userInfo"]["username"] == user


def test_impersonation_needs_permission(cluster: Cluster, ns: str) -> None:
    user = unique("eve")
    config = cluster.new_user(user, ns)
    refused = cluster.kubectl("get", "pods", "-n", ns, "--as", "admin", kubeconfig=config, check=False)
    assert refused.returncode == 1
    assert f'users "admin" is forbidden: User "{user}" cannot impersonate resource "users" in API group ""' \
        in refused.stderr
