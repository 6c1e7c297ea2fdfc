"""`pycdi user create`: a new non-admin user with a bearer token and no permissions."""

from __future__ import annotations

import asyncio
import base64
import secrets
from pathlib import Path

import aiohttp
import click

from ..kube.client import KubeClient
from ..kube.config import ClientConfig, ConfigError, load_kubeconfig
from ..kube.errors import APIStatusError
from ..kube.resources import SECRETS

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
    try:
        token = asyncio.run(_user_token(admin, name))
    except APIStatusError as e:
        raise click.ClickException(e.message) from None
    except (aiohttp.ClientError, OSError) as e:
        raise click.ClickException(f"cannot reach the API server at {admin.server}: {e} "
                                   f"(is `pycdi up --data-dir {data_dir}` running?)") from None
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


async def _user_token(admin: ClientConfig, name: str) -> str:
    """The user's token: the existing one when the user was made before, else a new one stored as a Secret."""
    secret_name = f"pycdi-user-{name}"
    async with KubeClient(admin, field_manager="pycdi-user") as client:
        try:
            existing = await client.get(SECRETS, secret_name, USER_TOKEN_NAMESPACE)
            return base64.b64decode(existing["data"]["token"]).decode()
        except APIStatusError as e:
            if not e.not_found:
                raise
        token = secrets.token_urlsafe(32)
        await client.create(SECRETS, {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret_name, "labels": {"pycdi.io/user": name}},
            "type": USER_TOKEN_SECRET_TYPE,
            "data": {"user": _b64(name), "token": _b64(token)},
        }, USER_TOKEN_NAMESPACE)
        return token
