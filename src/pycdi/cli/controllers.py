"""`pycdi controller`: the CDI controller manager, standalone from a kubeconfig (or in-cluster), or in `pycdi up`."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click

from ..controllers.runtime import Manager
from ..controllers.setup import ControllerOptions, build_manager
from ..kube.client import KubeClient
from ..kube.config import ConfigError

log = logging.getLogger(__name__)


def start_controllers(kubeconfig: Path | None, options: ControllerOptions | None = None) -> Manager:
    """Start every CDI controller in this event loop, talking HTTP to the API server the kubeconfig names.

    Returns at once; `manager.ready()` turns true once the caches synced and the first reconciles ran,
    and `await manager.stop()` ends it. `pycdi up` uses it with the admin kubeconfig.
    """
    manager = build_manager(KubeClient.from_kubeconfig(kubeconfig), options)
    manager.start()
    return manager


@click.command("controller")
@click.option("--kubeconfig", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Kubeconfig to use (default: in-cluster credentials, else $KUBECONFIG or ~/.kube/config).")
@click.option("--upload-proxy-url", default=None,
              help="The upload proxy's URL, reported in CDIConfig status.uploadProxyURL unless overridden.")
@click.option("--clone-token-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="PEM private key of the CDI API (clone tokens are checked and extended with it).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def controller(kubeconfig: Path | None, upload_proxy_url: str | None, clone_token_key: Path | None,
               log_level: str) -> None:
    """Run the CDI controllers against a Kubernetes API server until SIGTERM or SIGINT."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    key = clone_token_key.read_bytes() if clone_token_key is not None else None
    try:
        asyncio.run(_run(kubeconfig, ControllerOptions(upload_proxy_url=upload_proxy_url, clone_token_key=key)))
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


async def _run(kubeconfig: Path | None, options: ControllerOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    manager = start_controllers(kubeconfig, options)
    ready = asyncio.create_task(manager.wait_ready())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if ready.done():
        click.echo("controllers ready", err=True)
    await stopping
    ready.cancel()
    click.echo("stopping", err=True)
    await manager.stop()
