"""The embedded single-machine cluster: API server, control loops and housekeeping in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .apiserver.pki import ensure_pki, render_kubeconfig
from .apiserver.rbac import default_cluster_role_bindings, default_cluster_roles
from .apiserver.rest.app import APIServer
from .control import ControlPlane
from .control.bootstrap import bootstrap
from .node import NodeAgent
from .storage.plane import StoragePlane

log = logging.getLogger(__name__)

#: kube-apiserver asks etcd to compact every 5 minutes, to the revision seen 5 minutes earlier.
COMPACT_INTERVAL = float(os.environ.get("PYCDI_COMPACT_INTERVAL", "300"))
COMPACT_KEEP = int(os.environ.get("PYCDI_COMPACT_KEEP", "1000"))


@dataclass
class ClusterConfig:
    data_dir: Path
    api_host: str = "127.0.0.1"
    api_port: int = 6443
    #: The Node's name; None means the lowercased short hostname.
    node_name: str | None = None


class EmbeddedCluster:
    """Starts and stops every embedded component; `readyz` reports each one."""

    def __init__(self, config: ClusterConfig, crds: list[dict[str, object]]) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pki = ensure_pki(self.data_dir / "pki")
        self.admin_token = self._admin_token()
        self.api = APIServer(self.data_dir, self.pki, self.admin_token)
        self.control = ControlPlane(self.api.service, self.pki.ca_cert_pem)
        self.api.readiness["control-plane"] = self.control.ready
        self.node = NodeAgent(self.api.service, self.data_dir, config.node_name)
        self.api.subresources.log_reader = self.node.log_reader
        self.api.readiness["node-agent"] = self.node.ready
        # Storage admission plug-ins register on the API server's chain here, before it serves.
        self.storage = StoragePlane(self.api.service, self.data_dir, self.node.node_name)
        self.api.readiness["pv-binder"] = self.storage.binder_ready
        self.api.readiness["provisioner"] = self.storage.provisioner_ready
        self._crds = crds
        self._tasks: list[asyncio.Task[None]] = []
        self.kubeconfig_path = self.data_dir / "kubeconfig"

    def _admin_token(self) -> str:
        path = self.data_dir / "pki" / "admin.token"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def api_url(self) -> str:
        return f"https://{self.config.api_host}:{self.api.port}"

    async def start(self) -> None:
        await bootstrap(self.api.service, self._crds, default_cluster_roles(), default_cluster_role_bindings())
        await self.api.start(self.config.api_host, self.config.api_port)
        kubeconfig = render_kubeconfig(self.api_url, self.pki.ca_cert_pem, "admin", self.admin_token)
        tmp = self.kubeconfig_path.with_suffix(".tmp")
        tmp.write_text(kubeconfig)
        tmp.chmod(0o600)
        tmp.replace(self.kubeconfig_path)  # atomic: readers never see half a kubeconfig
        await self.control.start()
        await self.storage.start()
        self.node.worker.api_port = self.api.port
        await self.node.start()
        self._tasks.append(asyncio.create_task(self._compactor()))

    async def _compactor(self) -> None:
        store = self.api.store
        previous = store.revision
        while True:
            await asyncio.sleep(COMPACT_INTERVAL)
            try:
                store.compact(previous, keep=COMPACT_KEEP)
            except Exception:  # compaction is housekeeping: log and try again next time
                log.exception("compaction failed")
            previous = store.revision

    async def stop(self) -> None:
        await self.node.stop()  # worker processes first: they must not outlive `pycdi up`
        await self.storage.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.control.stop()
        await self.api.stop()
