"""Run the real kubectl against a recording HTTPS server and decode the protobuf bodies it sends.

The oracle for the typed ``create`` generators is the same kubectl's ``--dry-run=client -o json``
output: the JSON form of the very object it would otherwise send as protobuf. Set
PYCDI_REGEN_PROTOBUF_FIXTURES=1 to rewrite the binary fixtures the fast tests replay.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pycdi.cluster.apiserver.protobuf import PROTOBUF_CONTENT_TYPE, decode_protobuf_object

from .protobuf_fixtures.capture import KUBECTL_DIR, TOKEN, Captured, CaptureServer, make_tls

FIXTURES = Path(__file__).parent / "protobuf_fixtures"
REGENERATE = os.environ.get("PYCDI_REGEN_PROTOBUF_FIXTURES") == "1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaptureServer]:
    srv = CaptureServer(tmp_path_factory.mktemp("capture"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Input files for --from-file and `create secret tls`."""
    directory = tmp_path_factory.mktemp("inputs")
    tls = make_tls(directory, common_name="example.test")
    binary = directory / "blob.bin"
    binary.write_bytes(bytes(range(256)))
    text = directory / "settings.conf"
    text.write_text("a=1\nb=two\n")
    return {"cert": tls.cert_path, "key": tls.key_path, "binary": binary, "text": text}


def _without_nulls(value: Any) -> Any:
    """JSON shows unset pointers and nil lists as null; the decoder omits them instead."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _one_protobuf_post(server: CaptureServer) -> Captured:
    posts = server.take()
    assert len(posts) == 1, [p.path for p in posts]
    post = posts[0]
    assert post.content_type == PROTOBUF_CONTENT_TYPE
    assert post.authorization == f"Bearer {TOKEN}"
    assert post.body.startswith(b"k8s\x00")
    return post


def _save_fixture(name: str, post: Captured, decoded: dict[str, Any]) -> None:
    if REGENERATE:
        (FIXTURES / f"{name}.pb").write_bytes(post.body)
        (FIXTURES / f"{name}.json").write_text(json.dumps(decoded, indent=2, sort_keys=True) + "\n")


# (fixture name or "", POST path, kubectl arguments). The args may name input files as {cert} etc.
CREATE_CASES: list[tuple[str, str, list[str]]] = [
    ("namespace", "/api/v1/namespaces", ["create", "namespace", "demo"]),
    (
        "configmap",
        "/api/v1/namespaces/default/configmaps",
        [
            "create",
            "configmap",
            "c",
            "--from-literal=a=b",
            "--from-literal=empty=",
            "--from-file=blob={binary}",
            "--from-file={text}",
        ],
    ),
    (
        "secret_generic",
        "/api/v1/namespaces/default/secrets",
        [
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=k=v",
            "--from-file=blob={binary}",
            "--type=Opaque",
        ],
    ),
    (
        "",
        "/api/v1/namespaces/other/secrets",
        ["create", "secret", "generic", "s2", "-n", "other", "--from-literal=k=v", "--append-hash"],
    ),
    # Not saved as a fixture: the body carries a (throwaway) private key that secret scanners flag.
    (
        "",
        "/api/v1/namespaces/default/secrets",
        ["create", "secret", "tls", "t", "--cert={cert}", "--key={key}"],
    ),
    (
        "secret_docker_registry",
        "/api/v1/namespaces/default/secrets",
        [
            "create",
            "secret",
            "docker-registry",
            "d",
            "--docker-server=registry.example:5000",
            "--docker-username=u",
            "--docker-password=p@ss",
            "--docker-email=u@example.test",
        ],
    ),
    ("serviceaccount", "/api/v1/namespaces/default/serviceaccounts", ["create", "serviceaccount", "sa"]),
    (
        "role",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        [
            "create",
            "role",
            "r",
            "--verb=get,list",
            "--resource=pods",
            "--resource=datavolumes.cdi.kubevirt.io",
            "--resource-name=p1",
        ],
    ),
    (
        "clusterrole",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        ["create", "clusterrole", "cr", "--verb=create", "--resource=datavolumes.cdi.kubevirt.io/source"],
    ),
    # kubectl resolves the base resource through discovery (short names too) and appends the
    # subresource verbatim, unchecked: this gives resources ["datavolumes/source"].
    (
        "",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        ["create", "clusterrole", "short", "--verb=create", "--resource=dv/source"],
    ),
    (
        "",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        [
            "create",
            "clusterrole",
            "nonres",
            "--verb=get",
            "--non-resource-url=/healthz",
            "--non-resource-url=/logs/*",
        ],
    ),
    (
        "clusterrole_aggregated",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        ["create", "clusterrole", "agg", "--aggregation-rule=rbac.example.com/aggregate-to-edit=true,tier=x"],
    ),
    (
        "rolebinding",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        ["create", "rolebinding", "rb", "--role=r", "--user=u", "--group=g", "--serviceaccount=ns:sa"],
    ),
    (
        "clusterrolebinding",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        ["create", "clusterrolebinding", "crb", "--clusterrole=cr", "--user=u", "--serviceaccount=ns:sa"],
    ),
    ("", "/api/v1/namespaces", ["create", "namespace", "saved", "--save-config"]),
]


@pytest.mark.parametrize(
    ("fixture", "path", "args"), CREATE_CASES, ids=[" ".join(c[2][:3]) for c in CREATE_CASES]
)
def test_create_generator_body_decodes_to_its_json_form(
    server: CaptureServer, files: dict[str, Path], fixture: str, path: str, args: list[str]
) -> None:
    argv = [a.format(**files) for a in args]
    dry_run = server.kubectl(*argv, "--dry-run=client", "-o", "json")
    assert server.take() == []  # client dry-run sends nothing
    expected = _without_nulls(json.loads(dry_run.stdout))

    result = server.kubectl(*argv)
    assert "created" in result.stdout
    post = _one_protobuf_post(server)
    assert post.path == path
    assert post.query.get("fieldManager") == "kubectl-create"
    decoded = decode_protobuf_object(post.body)
    assert decoded == expected
    if fixture:
        _save_fixture(fixture, post, decoded)


def test_create_token_posts_a_token_request(server: CaptureServer) -> None:
    result = server.kubectl("create", "token", "sa", "--duration=10m", "--audience=x", "--audience=y")
    assert result.stdout.strip() == "issued-token"
    post = _one_protobuf_post(server)
    assert post.path == "/api/v1/namespaces/default/serviceaccounts/sa/token"
    decoded = decode_protobuf_object(post.body)
    assert decoded == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {},
        "spec": {"audiences": ["x", "y"], "expirationSeconds": 600},
        "status": {"token": ""},  # TokenRequestStatus.token has no omitempty: JSON shows it too
    }
    _save_fixture("token_request", post, decoded)


def test_create_token_bound_to_an_object(server: CaptureServer) -> None:
    server.kubectl(
        "create",
        "token",
        "sa",
        "-n",
        "ns1",
        "--bound-object-kind=Secret",
        "--bound-object-name=s1",
        "--bound-object-uid=1234-abcd",
    )
    post = _one_protobuf_post(server)
    assert post.path == "/api/v1/namespaces/ns1/serviceaccounts/sa/token"
    decoded = decode_protobuf_object(post.body)
    assert decoded["spec"] == {
        "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "s1", "uid": "1234-abcd"},
    }
    _save_fixture("token_request_bound", post, decoded)


def test_auth_can_i_resource(server: CaptureServer) -> None:
    result = server.kubectl("auth", "can-i", "create", "pods", "--subresource=log", "-n", "ns1")
    assert result.stdout.strip() == "yes"
    post = _one_protobuf_post(server)
    assert post.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    decoded = decode_protobuf_object(post.body)
    assert decoded == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {
            "resourceAttributes": {
                "namespace": "ns1",
                "verb": "create",
                "resource": "pods",
                "subresource": "log",
            }
        },
        "status": {"allowed": False},  # `allowed` has no omitempty
    }
    _save_fixture("ssar_resource", post, decoded)


def test_auth_can_i_custom_resource_with_name(server: CaptureServer) -> None:
    server.kubectl("auth", "can-i", "create", "datavolumes.cdi.kubevirt.io/dv1", "--subresource=source")
    decoded = decode_protobuf_object(_one_protobuf_post(server).body)
    assert decoded["spec"] == {
        "resourceAttributes": {
            "namespace": "default",
            "verb": "create",
            "group": "cdi.kubevirt.io",
            "resource": "datavolumes",
            "subresource": "source",
            "name": "dv1",
        }
    }


def test_auth_can_i_non_resource_url(server: CaptureServer) -> None:
    server.kubectl("auth", "can-i", "get", "/logs/")
    post = _one_protobuf_post(server)
    decoded = decode_protobuf_object(post.body)
    assert decoded["spec"] == {"nonResourceAttributes": {"path": "/logs/", "verb": "get"}}
    _save_fixture("ssar_nonresource", post, decoded)


def test_auth_can_i_list(server: CaptureServer) -> None:
    result = server.kubectl("auth", "can-i", "--list", "-n", "ns1")
    assert "*.*" in result.stdout
    post = _one_protobuf_post(server)
    assert post.path == "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
    decoded = decode_protobuf_object(post.body)
    assert decoded == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "metadata": {},
        "spec": {"namespace": "ns1"},
        "status": {"incomplete": False},  # `incomplete` has no omitempty
    }
    _save_fixture("ssrr", post, decoded)


def test_auth_whoami(server: CaptureServer) -> None:
    result = server.kubectl("auth", "whoami", "-o", "json")
    assert json.loads(result.stdout)["status"]["userInfo"]["username"] == "capture-user"
    post = _one_protobuf_post(server)
    assert post.path == "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    decoded = decode_protobuf_object(post.body)
    assert decoded == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {},
        "status": {"userInfo": {}},
    }
    _save_fixture("ssr_v1", post, decoded)


def test_auth_whoami_falls_back_to_older_versions(tmp_path: Path) -> None:
    missing = frozenset(
        {
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            "/apis/authentication.k8s.io/v1beta1/selfsubjectreviews",
        }
    )
    srv = CaptureServer(tmp_path, missing_paths=missing)
    srv.start()
    try:
        result = srv.kubectl("auth", "whoami")
        assert "capture-user" in result.stdout
        posts = srv.take()
    finally:
        srv.stop()
    versions = [p.path.split("/")[3] for p in posts]
    assert versions == ["v1", "v1beta1", "v1alpha1"]
    for post in posts:
        decoded = decode_protobuf_object(post.body)
        assert decoded["apiVersion"] == f"authentication.k8s.io/{post.path.split('/')[3]}"
        assert decoded["kind"] == "SelfSubjectReview"


# Every kubectl the dispatcher can pick. Measured: 1.27-1.31 send these bodies as JSON, 1.32 and
# later as protobuf; either way the server must end up with the same dict.
VERSIONS = sorted(p.name.removeprefix("kubectl.1.") for p in KUBECTL_DIR.glob("kubectl.1.*"))


def _body_as_dict(post: Captured) -> dict[str, Any]:
    if post.content_type == PROTOBUF_CONTENT_TYPE:
        return decode_protobuf_object(post.body)
    assert post.content_type == "application/json"
    parsed: dict[str, Any] = _without_nulls(json.loads(post.body))
    return parsed


VERSION_CASES: list[tuple[list[str], dict[str, Any]]] = [
    (
        ["create", "configmap", "v", "--from-literal=k=v"],
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "v"}, "data": {"k": "v"}},
    ),
    (
        ["create", "secret", "generic", "s", "--from-literal=k=v"],
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}},
    ),
    (
        ["create", "rolebinding", "rb", "--clusterrole=view", "--serviceaccount=ns:sa"],
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "rb"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        },
    ),
    (
        ["auth", "can-i", "list", "secrets"],
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "secrets"}},
            "status": {"allowed": False},
        },
    ),
]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_kubectl_version_gives_the_same_dict(server: CaptureServer, version: str) -> None:
    for args, expected in VERSION_CASES:
        server.kubectl(*args, version=version)
        posts = server.take()
        assert len(posts) == 1
        if int(version) >= 32:
            assert posts[0].content_type == PROTOBUF_CONTENT_TYPE
        assert _body_as_dict(posts[0]) == expected, (version, args)


def test_versions_found() -> None:
    assert VERSIONS, f"no kubectl.1.* binaries under {KUBECTL_DIR}"
