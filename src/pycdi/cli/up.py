"""`pycdi up`: run the embedded cluster in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from ..api.clonetoken import CloneTokens
from ..api.crds import all_crds
from ..cdiapi.uploadtoken import TokenIssuer, TokenValidator, ensure_signing_keys
from ..cluster.apiserver.pki import DEFAULT_HOSTS, PKI, issue_serving_cert
from ..cluster.embedded import ClusterConfig, EmbeddedCluster
from ..controllers.runtime import Manager
from ..controllers.setup import ControllerOptions
from ..kube.client import KubeClient
from ..uploadproxy.app import UploadProxy
from .admission import register_cdi_admission
from .clone_admission import DataVolumeMutation
from .controllers import start_controllers
from .uploadapi import register_upload_api

PROXY_HOST = "127.0.0.1"
PROXY_NAME = "cdi-uploadproxy"


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
    # UploadTokenRequest: an API group of the server, signing with a key pair kept beside the cluster's keys.
    keys = ensure_signing_keys(cluster.pki.directory)
    # Clone authorization (SubjectAccessReviews answered by the server's RBAC) signs clone tokens with that key,
    # as upstream's API server does; the controllers validate and extend them with the same key pair.
    cluster.api.admission.register(DataVolumeMutation(cluster.api.service, cluster.api.authorizer,
                                                      CloneTokens.from_private_key(keys.private_key_pem)))
    register_upload_api(cluster.api, TokenIssuer(keys.private_key_pem))
    # The CDI controllers are a client of the cluster (DESIGN.md section 2): they start once it serves,
    # over HTTPS with the admin kubeconfig; readyz waits for them under the name "cdi-controllers".
    controllers: list[Manager] = []
    cluster.api.readiness["cdi-controllers"] = lambda: bool(controllers) and controllers[0].ready()
    proxies: list[UploadProxy] = []
    cluster.api.readiness["upload-proxy"] = lambda: bool(proxies) and proxies[0].ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await cluster.start()
    except OSError as e:
        await cluster.stop()
        raise click.ClickException(f"cannot start the API server: {e}") from None
    # The upload proxy is a client of the cluster too (it reads PVCs and pods), verifying tokens with the key.
    proxy_client = KubeClient.from_kubeconfig(cluster.kubeconfig_path)
    # On this machine the proxy reaches upload servers through their local sockets (no TLS on loopback).
    proxy = UploadProxy(proxy_client, TokenValidator(keys.public_key_pem).check, local_path=cluster.node.local_path)
    # Whatever happens from here on, everything started is stopped: a loop left running would keep the process
    # (and its workers) alive after an error.
    try:
        try:
            port = await proxy.start(PROXY_HOST, upload_proxy_port, _proxy_ssl_context(cluster.pki))
        except OSError as e:
            raise click.ClickException(f"cannot start the upload proxy: {e}") from None
        proxies.append(proxy)
        proxy_url = f"https://{PROXY_HOST}:{port}"
        controllers.append(start_controllers(cluster.kubeconfig_path, ControllerOptions(
            upload_proxy_url=proxy_url, clone_token_key=keys.private_key_pem)))
        click.echo(f"kubeconfig: {cluster.kubeconfig_path}")
        click.echo(f"API server: {cluster.api_url}")
        click.echo(f"upload proxy: {proxy_url}")
        click.echo(f"export KUBECONFIG={cluster.kubeconfig_path}", err=True)
        sys.stdout.flush()
        await stop.wait()
        click.echo("stopping", err=True)
    finally:
        await proxy.stop()
        await proxy_client.close()
        if controllers:
            await controllers[0].stop()  # first: they would only log errors once the API server is gone
        await cluster.stop()


def _proxy_ssl_context(pki: PKI) -> ssl.SSLContext:
    """The proxy's serving certificate, issued by the cluster CA (clients trust it as they trust the API)."""
    cert, key = issue_serving_cert(pki, PROXY_NAME, [*DEFAULT_HOSTS, PROXY_NAME, f"{PROXY_NAME}.cdi",
                                                     f"{PROXY_NAME}.cdi.svc"])
    cert_path, key_path = pki.directory / "uploadproxy.crt", pki.directory / "uploadproxy.key"
    key_path.touch(mode=0o600)
    key_path.chmod(0o600)
    key_path.write_bytes(key)
    cert_path.write_bytes(cert)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(cert_path, key_path)
    return ctx
