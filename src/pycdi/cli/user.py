"""`pycdi user create`: a new non-admin user with a bearer token and no permissions."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import click

from ..kube.config import ConfigError, load_kubeconfig
from ..kube.errors import APIStatusError
from ..kube.rest import RestClient

#: Kept in step with the embedded API server's authenticator (pycdi.cluster.apiserver.authn).
USER_TOKEN_SECRET_TYPE = "pycdi.io/user-token"
USER_TOKEN_NAMESPACE = "kube-system"


@click.group()
def user() -> None:
    """Manage users of the embedded cluster."""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@user.command("create")
@click.argument("name")
@click.option("--namespace", "-n", default="default", show_default=True,
              help="The namespace the printed kubeconfig's context uses.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".pycdi"), show_default=True)
def create(name: str, namespace: str, data_dir: Path) -> None:
    """Print a kubeconfig for user NAME, created with no permissions (grant them with RBAC)."""
    import yaml

    admin_path = data_dir / "kubeconfig"
    try:
        admin = load_kubeconfig(admin_path)
    except ConfigError as e:
        raise click.ClickException(f"{e} (is `pycdi up --data-dir {data_dir}` running?)") from None
    client = RestClient(admin)
    secret_name = f"pycdi-user-{name}"
    path = f"/api/v1/namespaces/{USER_TOKEN_NAMESPACE}/secrets"
    try:
        existing = client.get(f"{path}/{secret_name}")
        token = base64.b64decode(existing["data"]["token"]).decode()
    except APIStatusError as e:
        if not e.not_found:
            raise click.ClickException(e.message) from None
        token = secrets.token_urlsafe(32)
        try:
            client.create(path, {
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": secret_name, "labels": {"pycdi.io/user": name}},
                "type": USER_TOKEN_SECRET_TYPE,
                "data": {"user": _b64(name), "token": _b64(token)},
            })
        except APIStatusError as err:
            raise click.ClickException(err.message) from None
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "pycdi", "cluster": {
            "server": admin.server,
            "certificate-authority-data": base64.b64encode(admin.ca_pem or b"").decode()}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": f"{name}@pycdi", "context": {"cluster": "pycdi", "user": name,
                                                           "namespace": namespace}}],
        "current-context": f"{name}@pycdi",
        "preferences": {},
    }
    click.echo(yaml.safe_dump(config, sort_keys=False), nl=False)
