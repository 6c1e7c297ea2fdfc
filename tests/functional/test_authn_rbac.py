"""Authentication (tokens, users, ServiceAccounts) and RBAC authorization, through raw HTTP and the real kubectl."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster

RBAC = "/apis/rbac.authorization.k8s.io/v1"
AUTHZ = "/apis/authorization.k8s.io/v1"
AUTHN = "/apis/authentication.k8s.io/v1"
_counter = itertools.count()


def _unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def _namespace(cluster: Cluster, prefix: str) -> str:
    name = _unique(prefix)
    status, body, _ = cluster.request("POST", "/api/v1/namespaces",
                                      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert status == 201, body
    return name


def _token(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"])


def _create(cluster: Cluster, path: str, obj: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    status, body, _ = cluster.request("POST", path, obj, token=token)
    assert status == 201, body
    assert isinstance(body, dict)
    return body


def _role(cluster: Cluster, namespace: str, name: str, rules: list[dict[str, Any]]) -> None:
    _create(cluster, f"{RBAC}/namespaces/{namespace}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name},
        "rules": rules})


def _bind(cluster: Cluster, namespace: str, role_kind: str, role: str, subjects: list[dict[str, Any]]) -> str:
    name = _unique("rb")
    _create(cluster, f"{RBAC}/namespaces/{namespace}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": subjects})
    return name


def _user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def _configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def _can_i(cluster: Cluster, kubeconfig: Path, *args: str) -> str:
    result = cluster.kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, check=False)
    return result.stdout.strip()


# ---- authentication ---------------------------------------------------------------------------------


def test_no_token_is_401_status(cluster: Cluster) -> None:
    status, body, _ = cluster.request("GET", "/api/v1/namespaces", token="")
    assert status == 401
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized" and body["code"] == 401
    assert body["status"] == "Failure"


@pytest.mark.parametrize("token", ["not-a-token", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"])
def test_unknown_token_is_401(cluster: Cluster, token: str) -> None:
    for path in ("/api/v1/namespaces", "/apis", "/api/v1/namespaces/default/configmaps"):
        status, body, _ = cluster.request("GET", path, token=token)
        assert status == 401, (path, body)
        assert body["reason"] == "Unauthorized"


def test_kubectl_with_a_bad_token_says_unauthorized(cluster: Cluster, tmp_path: Path) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"]["token"] = "wrong"
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(yaml.safe_dump(config))
    result = cluster.kubectl("get", "configmaps", kubeconfig=bad, check=False)
    assert result.returncode != 0
    assert "Unauthorized" in result.stderr or "provide credentials" in result.stderr, result.stderr


def test_anonymous_may_read_health_and_version(cluster: Cluster) -> None:
    for path in ("/healthz", "/readyz", "/livez", "/version"):
        status, body, _ = cluster.request("GET", path, token="")
        assert status == 200, (path, body)
    status, body, _ = cluster.request("GET", "/version", token="")
    assert body["major"] == "1" and body["gitVersion"].startswith("v1.")


# ---- a new user and RBAC ----------------------------------------------------------------------------


def test_new_user_has_no_permissions(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-none")
    _create(cluster, f"/api/v1/namespaces/{ns}/configmaps", _configmap("existing"))
    kubeconfig = cluster.new_user("nobody", ns)
    token = _token(kubeconfig)
    base = f"/api/v1/namespaces/{ns}/configmaps"

    status, body, _ = cluster.request("GET", base, token=token)
    assert status == 403
    assert body["reason"] == "Forbidden" and body["kind"] == "Status"
    assert body["message"] == (f'configmaps is forbidden: User "nobody" cannot list resource "configmaps" '
                               f'in API group "" in the namespace "{ns}"')
    assert body["details"]["kind"] == "configmaps"

    status, body, _ = cluster.request("GET", f"{base}/existing", token=token)
    assert status == 403
    assert body["message"] == (f'configmaps "existing" is forbidden: User "nobody" cannot get resource '
                               f'"configmaps" in API group "" in the namespace "{ns}"')
    assert body["details"]["name"] == "existing"

    status, body, _ = cluster.request("POST", base, _configmap("new"), token=token)
    assert status == 403
    assert body["message"] == (f'configmaps is forbidden: User "nobody" cannot create resource "configmaps" '
                               f'in API group "" in the namespace "{ns}"')
    status, body, _ = cluster.request("GET", "/apis/cdi.kubevirt.io/v1beta1/datavolumes", token=token)
    assert status == 403
    assert body["message"] == ('datavolumes.cdi.kubevirt.io is forbidden: User "nobody" cannot list resource '
                               '"datavolumes" in API group "cdi.kubevirt.io" at the cluster scope')

    # kubectl shows kube's wording, and discovery still works for the user (system:discovery).
    result = cluster.kubectl("get", "configmaps", kubeconfig=kubeconfig, check=False)
    assert result.returncode != 0
    assert "Error from server (Forbidden)" in result.stderr, result.stderr
    assert 'User "nobody" cannot list resource "configmaps"' in result.stderr
    assert _can_i(cluster, kubeconfig, "list", "configmaps") == "no"
    # Nothing was created by the denied request.
    names = [i["metadata"]["name"] for i in cluster.kubectl_json("get", "configmaps", "-n", ns)["items"]]
    assert "new" not in names


def test_role_binding_grants_exactly_its_rules_in_its_namespace(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-role")
    other = _namespace(cluster, "rbac-other")
    for namespace in (ns, other):
        _create(cluster, f"/api/v1/namespaces/{namespace}/configmaps", _configmap("cm"))
    kubeconfig = cluster.new_user("reader", ns)
    token = _token(kubeconfig)

    _role(cluster, ns, "cm-reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}])
    # A Role alone grants nothing.
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=token)[0] == 403
    _bind(cluster, ns, "Role", "cm-reader", [_user("reader")])

    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=token)
    assert status == 200
    assert "cm" in [i["metadata"]["name"] for i in body["items"]]
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps/cm", token=token)[0] == 200
    # Exactly those verbs and resources, in that namespace only.
    assert cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", _configmap("x"), token=token)[0] == 403
    assert cluster.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps/cm", token=token)[0] == 403
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/secrets", token=token)[0] == 403
    assert cluster.request("GET", f"/api/v1/namespaces/{other}/configmaps", token=token)[0] == 403
    assert cluster.request("GET", "/api/v1/configmaps", token=token)[0] == 403

    assert cluster.kubectl("get", "configmap", "cm", kubeconfig=kubeconfig).returncode == 0
    assert _can_i(cluster, kubeconfig, "list", "configmaps") == "yes"
    assert _can_i(cluster, kubeconfig, "create", "configmaps") == "no"
    assert _can_i(cluster, kubeconfig, "list", "configmaps", "-n", other) == "no"


def test_resource_names_restrict_a_rule(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-names")
    for name in ("allowed", "denied"):
        _create(cluster, f"/api/v1/namespaces/{ns}/configmaps", _configmap(name))
    token = _token(cluster.new_user("namer", ns))
    _role(cluster, ns, "one", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                                "resourceNames": ["allowed"]}])
    _bind(cluster, ns, "Role", "one", [_user("namer")])
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps/allowed", token=token)[0] == 200
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps/denied", token=token)[0] == 403


def test_cluster_role_through_role_binding_is_namespaced(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-cr")
    other = _namespace(cluster, "rbac-cr-other")
    kubeconfig = cluster.new_user("viewer", ns)
    token = _token(kubeconfig)
    _bind(cluster, ns, "ClusterRole", "view", [_user("viewer")])
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=token)[0] == 200
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims", token=token)[0] == 200
    assert cluster.request("GET", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{ns}/datavolumes",
                           token=token)[0] == 200
    assert cluster.request("GET", f"/api/v1/namespaces/{other}/configmaps", token=token)[0] == 403
    # view does not include Secrets or any write.
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/secrets", token=token)[0] == 403
    assert cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", _configmap("w"), token=token)[0] == 403
    assert _can_i(cluster, kubeconfig, "get", "pods") == "yes"
    assert _can_i(cluster, kubeconfig, "delete", "pods") == "no"


def test_edit_cluster_role_aggregates_cdi_and_kubevirt(cluster: Cluster) -> None:
    roles = {r["metadata"]["name"] for r in cluster.kubectl_json("get", "clusterroles")["items"]}
    assert {"admin", "edit", "view", "cluster-admin"} <= roles
    ns = _namespace(cluster, "rbac-edit")
    kubeconfig = cluster.new_user("editor", ns)
    token = _token(kubeconfig)
    _bind(cluster, ns, "ClusterRole", "edit", [_user("editor")])
    for resource in ("datavolumes.cdi.kubevirt.io", "virtualmachines.kubevirt.io", "persistentvolumeclaims",
                     "configmaps"):
        assert _can_i(cluster, kubeconfig, "create", resource) == "yes", resource
    assert _can_i(cluster, kubeconfig, "create", "roles.rbac.authorization.k8s.io") == "no"
    assert cluster.request("GET", f"/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachines", token=token)[0] == 200
    created = _create(cluster, f"/api/v1/namespaces/{ns}/configmaps", _configmap("by-editor"), token=token)
    assert created["metadata"]["name"] == "by-editor"


def test_group_system_authenticated(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-group")
    kubeconfig = cluster.new_user("grouped", ns)
    token = _token(kubeconfig)
    out = json.loads(cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert "system:authenticated" in out["status"]["userInfo"]["groups"]
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=token)[0] == 403
    _role(cluster, ns, "everyone", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}])
    _bind(cluster, ns, "Role", "everyone", [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                             "name": "system:authenticated"}])
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=token)[0] == 200


def test_subject_access_review_checks_datavolumes_source(cluster: Cluster) -> None:
    src = _namespace(cluster, "rbac-src")
    dst = _namespace(cluster, "rbac-dst")
    cluster_role = _unique("dv-cloner")
    _create(cluster, f"{RBAC}/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": cluster_role},
        "rules": [{"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes/source"], "verbs": ["create"]}]})
    _bind(cluster, src, "ClusterRole", cluster_role, [_user("cloner")])

    def sar(namespace: str, subresource: str, verb: str = "create") -> bool:
        body = _create(cluster, f"{AUTHZ}/subjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "cloner", "groups": ["system:authenticated"], "resourceAttributes": {
                "namespace": namespace, "verb": verb, "group": "cdi.kubevirt.io", "resource": "datavolumes",
                "subresource": subresource}}})
        assert body["kind"] == "SubjectAccessReview"
        return bool(body["status"]["allowed"])

    assert sar(src, "source")
    assert not sar(dst, "source")
    assert not sar(src, "")  # the subresource rule does not grant the resource itself
    assert not sar(src, "source", "delete")


def test_subject_access_review_needs_a_subject(cluster: Cluster) -> None:
    status, body, _ = cluster.request("POST", f"{AUTHZ}/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}})
    assert status == 422 and body["reason"] == "Invalid"


def test_self_subject_reviews(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-self")
    kubeconfig = cluster.new_user("selfie", ns)
    token = _token(kubeconfig)
    _role(cluster, ns, "pvc", [{"apiGroups": [""], "resources": ["persistentvolumeclaims"],
                                "verbs": ["get", "list", "watch"]}])
    _bind(cluster, ns, "Role", "pvc", [_user("selfie")])

    def ssar(verb: str, resource: str, namespace: str) -> bool:
        body = _create(cluster, f"{AUTHZ}/selfsubjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace}}},
            token=token)
        return bool(body["status"]["allowed"])

    assert ssar("watch", "persistentvolumeclaims", ns)
    assert not ssar("delete", "persistentvolumeclaims", ns)
    assert not ssar("list", "persistentvolumeclaims", "default")

    rules = _create(cluster, f"{AUTHZ}/selfsubjectrulesreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": ns}},
        token=token)["status"]
    granted = [r for r in rules["resourceRules"] if "persistentvolumeclaims" in r.get("resources", [])]
    assert granted and set(granted[0]["verbs"]) == {"get", "list", "watch"}
    assert not any("configmaps" in r.get("resources", []) for r in rules["resourceRules"])
    listed = cluster.kubectl("auth", "can-i", "--list", kubeconfig=kubeconfig).stdout
    assert "persistentvolumeclaims" in listed

    review = _create(cluster, f"{AUTHN}/selfsubjectreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token=token)
    assert review["status"]["userInfo"]["username"] == "selfie"


def test_token_review(cluster: Cluster) -> None:
    token = _token(cluster.new_user("reviewed", "default"))
    body = _create(cluster, f"{AUTHN}/tokenreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
    assert body["status"]["authenticated"] is True
    assert body["status"]["user"]["username"] == "reviewed"
    assert "system:authenticated" in body["status"]["user"]["groups"]
    body = _create(cluster, f"{AUTHN}/tokenreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "bogus"}})
    assert body["status"].get("authenticated", False) is False
    # Reviewing tokens is a privilege: the plain user may not.
    status, body, _ = cluster.request("POST", f"{AUTHN}/tokenreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}, token=token)
    assert status == 403


# ---- ServiceAccounts ----------------------------------------------------------------------------------


def test_every_namespace_gets_a_default_service_account(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-sa-default")
    cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", ns, "--timeout=60s")
    for existing in ("default", "kube-system", "cdi"):
        assert cluster.kubectl_json("get", "serviceaccount", "default", "-n", existing)["metadata"]["name"] \
            == "default"


def test_service_account_tokens(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-sa")
    sa = _create(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}})
    request = _create(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})
    assert request["kind"] == "TokenRequest"
    token = request["status"]["token"]
    assert request["status"]["expirationTimestamp"]

    review = _create(cluster, f"{AUTHN}/selfsubjectreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token=token)
    info = review["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{ns}:robot"
    assert {"system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"} <= set(info["groups"])
    assert info.get("uid") == sa["metadata"]["uid"]

    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=token)
    assert status == 403
    assert f'User "system:serviceaccount:{ns}:robot" cannot list' in body["message"]
    _role(cluster, ns, "robot", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}])
    _bind(cluster, ns, "Role", "robot", [{"kind": "ServiceAccount", "name": "robot", "namespace": ns}])
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=token)[0] == 200

    # `kubectl create token` (a protobuf TokenRequest) issues one too.
    kubectl_token = cluster.kubectl("create", "token", "robot", "-n", ns).stdout.strip()
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=kubectl_token)[0] == 200

    status, _, _ = cluster.request("DELETE", f"/api/v1/namespaces/{ns}/serviceaccounts/robot")
    assert status == 200
    for t in (token, kubectl_token):
        status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=t)
        assert status == 401, body
    # A new ServiceAccount of the same name does not revive the old tokens (a different uid).
    _create(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}})
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps", token=token)[0] == 401


def test_token_request_for_a_missing_service_account_is_404(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-sa-missing")
    status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/ghost/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert status == 404 and body["reason"] == "NotFound"


def test_user_cannot_escalate_by_binding_a_role(cluster: Cluster) -> None:
    """RBAC escalation check: a user allowed to create RoleBindings cannot bind rights they do not hold."""
    ns = _namespace(cluster, "rbac-escalate")
    token = _token(cluster.new_user("climber", ns))
    _role(cluster, ns, "binder", [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"],
                                   "verbs": ["create"]}])
    _bind(cluster, ns, "Role", "binder", [_user("climber")])
    status, body, _ = cluster.request("POST", f"{RBAC}/namespaces/{ns}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "self-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [_user("climber")]}, token=token)
    assert status == 403, body
    assert "attempting to grant RBAC permissions not currently held" in body["message"]
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/secrets", token=token)[0] == 403


def test_token_for_another_audience_is_not_an_api_credential(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-aud")
    _create(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "aud"}})
    request = _create(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts/aud/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"audiences": ["vault"]}})
    assert request["spec"]["audiences"] == ["vault"]
    status, body, _ = cluster.request("POST", f"{AUTHN}/selfsubjectreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token=request["status"]["token"])
    assert status == 401, body
    # The API's own audience (the default) works.
    default = _create(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts/aud/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert cluster.request("POST", f"{AUTHN}/selfsubjectreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        token=default["status"]["token"])[0] == 201


def test_token_request_expiration_minimum(cluster: Cluster) -> None:
    ns = _namespace(cluster, "rbac-exp")
    _create(cluster, f"/api/v1/namespaces/{ns}/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "short"}})
    status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/short/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 60}})
    assert status == 422 and body["reason"] == "Invalid"
    assert "spec.expirationSeconds" in body["message"]


def test_deleting_a_users_secret_revokes_the_token(cluster: Cluster) -> None:
    token = _token(cluster.new_user("revoked", "default"))
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    assert cluster.request("POST", f"{AUTHN}/selfsubjectreviews", review, token=token)[0] == 201
    status, _, _ = cluster.request("DELETE", "/api/v1/namespaces/kube-system/secrets/pycdi-user-revoked")
    assert status == 200
    assert cluster.request("POST", f"{AUTHN}/selfsubjectreviews", review, token=token)[0] == 401


def test_new_user_may_discover_but_not_read_other_paths(cluster: Cluster) -> None:
    token = _token(cluster.new_user("discoverer", "default"))
    for path in ("/api", "/api/v1", "/apis", "/apis/cdi.kubevirt.io/v1beta1", "/openapi/v3", "/version"):
        status, body, _ = cluster.request("GET", path, token=token)
        assert status == 200, (path, body)
    status, body, _ = cluster.request("GET", "/metrics", token=token)
    assert status == 403
    assert body["message"] == 'forbidden: User "discoverer" cannot get path "/metrics"'
    assert body["reason"] == "Forbidden"


def _binding_body(name: str, role_kind: str, role: str, user: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [_user(user)]}


def test_user_may_grant_what_they_hold_or_may_bind(cluster: Cluster) -> None:
    """The escalation check lets a user grant rights they hold, or any role they have the `bind` verb on."""
    ns = _namespace(cluster, "rbac-grant")
    token = _token(cluster.new_user("delegator", ns))
    _role(cluster, ns, "delegator", [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "roles"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
         "resourceNames": ["view"]}])
    _bind(cluster, ns, "Role", "delegator", [_user("delegator")])
    # A Role with a subset of the user's rights, and a binding to it: both allowed.
    status, body, _ = cluster.request("POST", f"{RBAC}/namespaces/{ns}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}, token=token)
    assert status == 201, body
    status, body, _ = cluster.request("POST", f"{RBAC}/namespaces/{ns}/rolebindings",
                                      _binding_body("to-reader", "Role", "cm-reader", "someone"), token=token)
    assert status == 201, body
    # `view` holds far more than the user, but the user may `bind` it by name.
    status, body, _ = cluster.request("POST", f"{RBAC}/namespaces/{ns}/rolebindings",
                                      _binding_body("to-view", "ClusterRole", "view", "someone"), token=token)
    assert status == 201, body
    # A Role with rights the user lacks is refused, naming the missing rule.
    status, body, _ = cluster.request("POST", f"{RBAC}/namespaces/{ns}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "cm-writer"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "delete"]}]}, token=token)
    assert status == 403, body
    assert body["reason"] == "Forbidden"
    assert 'roles.rbac.authorization.k8s.io "cm-writer" is forbidden: user "delegator"' in body["message"]
    assert '{APIGroups:[""], Resources:["configmaps"], Verbs:["get","delete"]}' in body["message"]
