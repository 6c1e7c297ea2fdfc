"""`pycdi cloner source|target|size`: the host-assisted clone workers and the clone size detection, configured by
environment variables as upstream's cdi-cloner (VOLUME_MODE, MOUNT_POINT, OWNER_UID, PREALLOCATION, ...)."""

from __future__ import annotations

import logging
import os
import sys
import urllib.parse
from typing import NoReturn

import click

from ..datapath import termination
from ..datapath.clone import protocol
from ..datapath.clone.source import SourceConfig
from ..datapath.clone.target import TargetConfig
from ..datapath.errors import DataPathError
from ..datapath.paths import resolve

log = logging.getLogger("pycdi.cloner")
DISK_IMAGE = "disk.img"
SECRET_ENV = "CLONER_SECRET"
#: The clone's certificate (both workers) and its key (the target only), PEM.
TLS_CERT_ENV, TLS_KEY_ENV = "CLONER_TLS_CERT", "CLONER_TLS_KEY"


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        _fail(f"missing environment variable {name}", transient=False)
    return value


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "t", "true")


def _fail(message: str, *, transient: bool) -> NoReturn:
    log.error("%s", message)
    termination.write_json({"message": message, "transient": transient})
    sys.exit(1)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)


def _data_path(block: bool, archive: bool, mount_point: str) -> str:
    """The container path of the data: the device, the volume's directory (archive) or its disk.img."""
    if block or archive:
        return str(resolve(mount_point))
    return str(resolve(os.path.join(mount_point, DISK_IMAGE)))


@click.group("cloner")
def cloner() -> None:
    """Host-assisted clone workers."""


@cloner.command("source")
def source() -> None:
    """Stream the source volume to the target worker (env: UPLOAD_URL, MOUNT_POINT, VOLUME_MODE, CONTENTTYPE...)."""
    from ..datapath.clone.progress import CloneProgress
    from ..datapath.clone.source import run

    _setup_logging()
    url = urllib.parse.urlsplit(_env("UPLOAD_URL"))
    if not url.hostname or not url.port:
        _fail(f"UPLOAD_URL {url.geturl()!r} names no host and port", transient=False)
    content = _env("CONTENTTYPE", protocol.KUBEVIRT)
    block = _env("VOLUME_MODE", "filesystem").lower() == "block"
    path = _data_path(block, content == protocol.ARCHIVE, _env("MOUNT_POINT"))
    progress = CloneProgress(os.environ.get("OWNER_UID", ""))
    port = os.environ.get("PYCDI_METRICS_PORT", "")
    if port:
        progress.serve(int(port), os.environ.get("PYCDI_METRICS_ADDR", "127.0.0.1"))
    config = SourceConfig(url.hostname, url.port, path, content, _env(SECRET_ENV), _env(TLS_CERT_ENV))
    try:
        result = run(config, progress.set)
    except FileNotFoundError as e:
        _fail(f"Unable to read the clone source: {e}", transient=False)
    except (protocol.ProtocolError, OSError) as e:
        _fail(f"Clone failed: {e}", transient=True)
    termination.write_json({"message": "Clone Complete", "bytesSent": result.sent})
    log.info("clone source done: %d of %d bytes sent", result.sent, result.size)


@cloner.command("target")
def target() -> None:
    """Receive a clone into the volume (env: LISTEN_ADDRESS, LISTEN_PORT, DESTINATION, VOLUME_MODE, CONTENTTYPE)."""
    from ..datapath.clone.target import serve

    _setup_logging()
    content = _env("CONTENTTYPE", protocol.KUBEVIRT)
    block = _env("VOLUME_MODE", "filesystem").lower() == "block"
    config = TargetConfig(
        listen_address=_env("LISTEN_ADDRESS", "0.0.0.0"), port=int(_env("LISTEN_PORT", "8443")),
        destination=_data_path(block, content == protocol.ARCHIVE, _env("DESTINATION")), block=block,
        content_type=content, secret=_env(SECRET_ENV), tls_cert=_env(TLS_CERT_ENV), tls_key=_env(TLS_KEY_ENV),
        preallocation=_flag("PREALLOCATION"))
    try:
        result = serve(config)
    except OSError as e:
        _fail(f"Clone target failed: {e}", transient=True)
    message = "Clone Complete" + (", Preallocation applied" if result.preallocation_applied else "")
    termination.write_json({"message": message, "preallocationApplied": result.preallocation_applied})


@cloner.command("size")
@click.option("--image-path", default="/data/disk.img", show_default=True,
              help="Container path of the image whose virtual size to report.")
def size(image_path: str) -> None:
    """Report an image's virtual size in the termination message (upstream's cdi-image-size-detection)."""
    from ..datapath import qemu

    _setup_logging()
    try:
        info = qemu.info(str(resolve(image_path)))
    except DataPathError as e:
        _fail(str(e), transient=e.transient)
    termination.write_message(str(info.virtual_size))
    log.info("virtual size of %s: %d", image_path, info.virtual_size)
