"""`pycdi up`: run the embedded cluster in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from ..api.crds import all_crds
from ..cluster.embedded import ClusterConfig, EmbeddedCluster
from ..controllers.runtime import Manager
from ..controllers.setup import ControllerOptions
from .admission import register_cdi_admission
from .controllers import start_controllers


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".pycdi"), show_default=True,
              help="Where the database, volumes, logs and TLS material live.")
@click.option("--api-port", type=int, default=6443, show_default=True, help="API server port (0 = any free port).")
@click.option("--upload-proxy-port", type=int, default=31001, show_default=True,
              help="Upload proxy port (0 = any free port).")
@click.option("--node-name", default=None,
              help="Name of this machine's Node object (default: the lowercased short hostname).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def up(data_dir: Path, api_port: int, upload_proxy_port: int, node_name: str | None, log_level: str) -> None:
    """Start the embedded cluster: API server, control plane and CDI components."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with _exclusive(data_dir):
        config = ClusterConfig(data_dir=data_dir, api_port=api_port, node_name=node_name)
        asyncio.run(_run(config, upload_proxy_port))


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """Hold a lock on DIR for the process's life: the store assumes it is the database's only writer."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "pycdi.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            raise click.ClickException(f"{data_dir} is in use by another `pycdi up` (pid {owner})") from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


async def _run(config: ClusterConfig, upload_proxy_port: int) -> None:
    cluster = EmbeddedCluster(config, all_crds())
    # CDI's admission webhooks (DataVolume validation) run in-process on the server's chain, before it serves.
    register_cdi_admission(cluster.api.admission, cluster.api.service)
    # The CDI controllers are a client of the cluster (DESIGN.md section 2): they start once it serves,
    # over HTTPS with the admin kubeconfig; readyz waits for them under the name "cdi-controllers".
    controllers: list[Manager] = []
    cluster.api.readiness["cdi-controllers"] = lambda: bool(controllers) and controllers[0].ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await cluster.start()
    except OSError as e:
        await cluster.stop()
        raise click.ClickException(f"cannot start the API server: {e}") from None
    # The upload proxy's URL as it will be served (port 0 has none to announce yet).
    proxy_url = f"https://127.0.0.1:{upload_proxy_port}" if upload_proxy_port else None
    controllers.append(start_controllers(cluster.kubeconfig_path, ControllerOptions(upload_proxy_url=proxy_url)))
    click.echo(f"kubeconfig: {cluster.kubeconfig_path}")
    click.echo(f"API server: {cluster.api_url}")
    # The upload proxy arrives with the upload feature; until then there is no URL to print.
    click.echo(f"upload proxy: not served yet (port {upload_proxy_port} reserved for it)")
    click.echo(f"export KUBECONFIG={cluster.kubeconfig_path}", err=True)
    sys.stdout.flush()
    await stop.wait()
    click.echo("stopping", err=True)
    await controllers[0].stop()  # first: they would only log errors once the API server is gone
    await cluster.stop()
