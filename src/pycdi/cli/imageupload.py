"""`pycdi image-upload`: virtctl image-upload against any CDI: make (or reuse) an upload DataVolume or PVC, wait
for its upload server, stream a local image through the upload proxy and wait until it is processed."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import click

from ..api import constants as c
from ..api import upload as u
from ..kube.client import KubeClient
from ..kube.config import ClientConfig, ConfigError, load_config
from ..kube.errors import APIStatusError
from ..kube.resources import PERSISTENT_VOLUME_CLAIMS
from . import uploadhttp
from .progress import ByteProgress
from .uploadopts import DEPRECATED, Flags, Options, UsageError, parse_args
from .uploadtarget import Target, TargetError
from .uploadwait import WaitFailed, annotations_of, processing_done, upload_ready

#: virtctl's processingWaitTotal.
PROCESSING_WAIT = 24 * 3600.0
#: Seconds before the n-th retry: doubling from 1, at most this many.
MAX_BACKOFF = 10.0
MSG_DONE_UPLOADING = ("Uploading data completed successfully, waiting for processing to complete, you can hit ctrl-c "
                      "without interrupting the progress")

USAGE = """\b
  # Upload a local disk image to a newly created DataVolume:
  pycdi image-upload dv fedora-dv --size=10Gi --image-path=/images/fedora30.qcow2

\b
  # Upload a local disk image to an existing DataVolume
  pycdi image-upload dv fedora-dv --no-create --image-path=/images/fedora30.qcow2

\b
  # Upload a local disk image to a newly created PersistentVolumeClaim
  pycdi image-upload pvc fedora-pvc --size=10Gi --image-path=/images/fedora30.qcow2

\b
  # Upload to a DataVolume with explicit URL to CDI Upload Proxy
  pycdi image-upload dv fedora-dv --uploadproxy-url=https://cdi-uploadproxy.mycluster.com \\
      --image-path=/images/fedora30.qcow2

\b
  # Upload a local disk archive to a newly created DataVolume:
  pycdi image-upload dv fedora-dv --size=10Gi --archive-path=/images/fedora30.tar
"""


class UploadFailed(Exception):
    """The bytes did not get there; the message says what the proxy or the connection answered."""


class CommandError(Exception):
    """Ends the command: the message alone on stderr, exit status 1 (as virtctl prints its errors)."""


def fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(1)


def say(line: str) -> None:
    click.echo(line)


@click.command("image-upload", epilog=USAGE, short_help="Upload a VM image to a DataVolume/PersistentVolumeClaim.")
@click.argument("args", nargs=-1, metavar="dv|pvc NAME")
@click.option("--insecure", is_flag=True, help="Allow insecure server connections when using HTTPS.")
@click.option("--uploadproxy-url", default="", help="The URL of the cdi-upload proxy service.")
@click.option("--pvc-name", default="", help="The destination DataVolume/PVC name (deprecated).")
@click.option("--dv-name", default="", help="The destination DataVolume name (deprecated: `dv NAME`).")
@click.option("--pvc-size", default="", help="The size of the PVC to create (ex. 10Gi, 500Mi) (deprecated).")
@click.option("--size", default="", help="The size of the DataVolume to create (ex. 10Gi, 500Mi).")
@click.option("--storage-class", default="", help="The storage class for the PVC.")
@click.option("--access-mode", default="", help="The access mode for the PVC.")
@click.option("--block-volume", is_flag=True,
              help="Create a PVC with VolumeMode=Block (deprecated: use --volume-mode=block).")
@click.option("--volume-mode", default="",
              help="Specify the VolumeMode (block/filesystem) used to create the PVC. Default is the storageProfile "
                   "default. For archive upload default is filesystem.")
@click.option("--image-path", default="", help="Path to the local VM image.")
@click.option("--archive-path", default="", help="Path to the local archive.")
@click.option("--no-create", is_flag=True, help="Don't attempt to create a new DataVolume/PVC.")
@click.option("--wait-secs", type=click.IntRange(min=0), default=300, show_default=True,
              help="Seconds to wait for upload pod to start.")
@click.option("--retry", type=click.IntRange(min=0), default=5, show_default=True,
              help="When upload server returns a transient error, we retry this number of times before giving up.")
@click.option("--force-bind", is_flag=True, help="Force bind the PVC, ignoring the WaitForFirstConsumer logic.")
@click.option("--datasource", is_flag=True, help="Create a DataSource pointing to the created DataVolume/PVC.")
@click.option("--default-instancetype", default="", help="The default instance type to associate with the image.")
@click.option("--default-instancetype-kind", default="",
              help="The default instance type kind to associate with the image.")
@click.option("--default-preference", default="", help="The default preference to associate with the image.")
@click.option("--default-preference-kind", default="", help="The default preference kind to associate with the image.")
@click.option("-n", "--namespace", default=None, help="The namespace (default: the kubeconfig context's).")
@click.option("--kubeconfig", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).")
def image_upload(args: tuple[str, ...], **given: Any) -> None:
    """Upload a VM image to a DataVolume/PersistentVolumeClaim."""
    for flag, advice in DEPRECATED.items():
        if given[flag.replace("-", "_")]:
            click.echo(f"Flag --{flag} has been deprecated, {advice}", err=True)
    try:
        options = parse_args(args, Flags(**given))
    except UsageError as e:
        fail(str(e))
    try:
        asyncio.run(run(options))
    except CommandError as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)


def _open_check(path: str) -> int:
    """virtctl opens the file first: a missing or unreadable file is the first error. Its size."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise CommandError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def upload_context(config: ClientConfig, insecure: bool) -> ssl.SSLContext:
    """The system's CAs plus the kubeconfig's cluster CA (it signs the embedded proxy's certificate)."""
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif config.ca_pem:
        context.load_verify_locations(cadata=config.ca_pem.decode())
    return context


async def run(options: Options) -> None:
    size = _open_check(options.image_path)
    try:
        config = load_config(options.flags.kubeconfig)
    except ConfigError as e:
        raise CommandError(str(e)) from None
    namespace = options.flags.namespace or config.namespace
    async with KubeClient(config) as client:
        target = Target(client, options, namespace, say)
        try:
            await Upload(target, options, config, size).run()
        except (TargetError, WaitFailed, UploadFailed) as e:
            raise CommandError(str(e)) from None
        except APIStatusError as e:
            raise CommandError(e.message or str(e)) from None
        except (aiohttp.ClientError, OSError) as e:
            raise CommandError(f"cannot reach the API server {config.server}: {e}") from None


class Upload:
    """virtctl's run(): the target, the wait for its upload server, the upload with retries, processing."""

    def __init__(self, target: Target, options: Options, config: ClientConfig, size: int) -> None:
        self.target = target
        self.options = options
        self.flags = options.flags
        self.size = size
        self.context = upload_context(config, self.flags.insecure)
        self.restarts = 0

    async def run(self) -> None:
        target, name, namespace = self.target, self.options.name, self.target.namespace
        pvc = await target.existing_pvc()
        if pvc is not None:
            await target.ensure_upload_target(pvc)
            say(f"Using existing PVC {namespace}/{pvc['metadata']['name']}")
        elif target.pending_dv is not None:
            say(f"Using existing DataVolume {namespace}/{name}")
        else:
            if not self.options.size:
                raise TargetError("when creating a resource, the size must be specified")
            created = await (target.create_pvc() if self.options.create_pvc else target.create_data_volume())
            say(f"{self.options.kind} {namespace}/{created['metadata']['name']} created")
        await self._wait_ready()
        url = await self._proxy_url()
        say(f"Uploading data to {url}")
        await self._upload(url)
        await self._recount_restarts()
        if self.flags.datasource:
            await target.data_source()
        say(MSG_DONE_UPLOADING)
        await processing_done(target.client, namespace, name, dv_mode=not self.options.create_pvc,
                              restarts=self.restarts, timeout=PROCESSING_WAIT, say=say)
        say(f"Uploading {self.options.image_path} completed successfully")

    async def _wait_ready(self) -> None:
        pvc = await upload_ready(self.target.client, self.target.namespace, self.options.name,
                                 dv_mode=not self.options.create_pvc, force_bind=self.flags.force_bind,
                                 timeout=float(self.flags.wait_secs), say=say)
        # Processing that fails makes the upload pod restart: counted from here.
        self.restarts = int(annotations_of(pvc).get(c.ANN_POD_RESTARTS) or 0)

    async def _recount_restarts(self) -> None:
        """Read the restart count again once the server has the bytes: a cluster restarted mid-upload restarts
        the upload pod too, and the count read before the retry may not have shown it yet (it would then look like
        a failed processing). A processing failure after this answer needs the pod to exit, the agent to restart
        it and the controller to copy the count: far longer than this one read."""
        try:
            pvc = await self.target.client.get(PERSISTENT_VOLUME_CLAIMS, self.options.name, self.target.namespace)
        except (APIStatusError, aiohttp.ClientError, OSError):
            return  # keep the count from before the upload
        self.restarts = max(self.restarts, int(annotations_of(pvc).get(c.ANN_POD_RESTARTS) or 0))

    async def _proxy_url(self) -> str:
        url = self.flags.uploadproxy_url or await self.target.proxy_url()
        if not url:
            raise TargetError("uploadproxy URL not found")
        return url if "://" in url else f"https://{url}"

    async def _upload(self, url: str) -> None:
        """uploadData: a fresh token for every attempt; connection errors and 5xx answers are retried after a
        back-off, once the upload server is ready again (and at the proxy's current URL, when CDIConfig names
        it: a restarted cluster may serve it elsewhere). An API server that cannot be reached meanwhile (the
        cluster restarting) counts as a failed attempt too."""
        retries = self.flags.retry
        attempt = 0
        while True:
            try:
                if attempt:
                    if not self.flags.uploadproxy_url:
                        url = await self._proxy_url()
                    await self._wait_ready()
                token = await self.target.token()
                if attempt == 0:
                    say("")
                error = await self._attempt(url, token)
            except (aiohttp.ClientError, OSError) as e:
                error = f"the API server cannot be reached: {e or type(e).__name__}"
            if error is None:
                say("")
                return
            attempt += 1
            if attempt > retries:
                raise UploadFailed(f"error uploading image after {retries} retries: {error}")
            delay = min(2.0 ** (attempt - 1), MAX_BACKOFF)
            click.echo(f"Upload attempt {attempt} failed: {error}; retrying in {delay:g}s", err=True)
            await asyncio.sleep(delay)

    async def _attempt(self, url: str, token: str) -> str | None:
        """One upload; None when it succeeded, else the retriable error. Final errors raise UploadFailed."""
        use_async = await asyncio.to_thread(uploadhttp.async_available, url, token, self.context)
        endpoint = uploadhttp.endpoint(url, u.UPLOAD_PATH_ASYNC if use_async else u.UPLOAD_PATH_SYNC)
        progress = ByteProgress(self.size, sys.stdout)
        cancel = threading.Event()
        try:
            answer = await asyncio.to_thread(uploadhttp.send_file, endpoint, token, self.options.image_path,
                                             self.context, progress, cancel)
        except uploadhttp.CertificateProblem as e:
            raise UploadFailed(f"{e} (--insecure skips the check)") from None
        except uploadhttp.ConnectionProblem as e:
            return str(e)
        finally:
            cancel.set()  # a cancelled wait (ctrl-c) stops the sending thread at its next chunk
            progress.close()
        if answer.status == 200:
            return None
        error = f"unexpected return value {answer.status}, {answer.body}"
        if answer.status == 401:
            raise UploadFailed(f"authentication failed: {error}")
        if answer.status < 500:
            raise UploadFailed(error)
        return error
