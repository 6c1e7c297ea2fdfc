"""A real embedded API server in this process, and a controller client talking HTTPS to it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pycdi.api.crds import all_crds
from pycdi.cluster.apiserver.pki import ensure_pki, render_kubeconfig
from pycdi.cluster.apiserver.rbac import default_cluster_role_bindings, default_cluster_roles
from pycdi.cluster.apiserver.rest.app import APIServer
from pycdi.cluster.control.bootstrap import bootstrap
from pycdi.kube.client import KubeClient


@pytest.fixture
def admin_token() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture
async def api(tmp_path: Path, admin_token: str) -> AsyncIterator[APIServer]:
    server = APIServer(tmp_path, ensure_pki(tmp_path / "pki"), admin_token)
    await bootstrap(server.service, all_crds(), default_cluster_roles(), default_cluster_role_bindings())
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def kubeconfig(api: APIServer, tmp_path: Path, admin_token: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(render_kubeconfig(f"https://127.0.0.1:{api.port}", api.pki.ca_cert_pem, "admin", admin_token))
    return path


@pytest.fixture
async def client(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    c = KubeClient.from_kubeconfig(kubeconfig)
    try:
        yield c
    finally:
        await c.close()
