"""`pycdi uploadserver`: the upload worker, configured by upstream cdi-uploadserver's environment variables."""

from __future__ import annotations

import logging
import sys

import click

from ..datapath import termination
from ..uploadserver.config import ConfigError, config_from_env
from ..uploadserver.server import Interrupted, serve

log = logging.getLogger("pycdi.uploadserver")


@click.command("uploadserver")
def uploadserver() -> None:
    """Receive one upload (through the upload proxy) into /data/disk.img or /dev/cdi-block-volume, then exit
    (env: LISTEN_ADDRESS, LISTEN_PORT, DESTINATION, TLS_CERT_FILE, TLS_KEY_FILE, CLIENT_CERT_FILE, ...)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        config = config_from_env()
        result = serve(config)
    except ConfigError as err:
        _fail(str(err), transient=False)
    except Interrupted as err:
        _fail(str(err), transient=True)
    except Exception as err:  # async processing failed: the pod restarts and waits for another upload
        _fail(f"Unable to process data: {err}", transient=True)
    termination.write_json({"message": "Upload Complete", "preallocationApplied": result.preallocation_applied})
    log.info("UploadServer successfully exited")


def _fail(message: str, *, transient: bool) -> None:
    log.error("UploadServer failed: %s", message)
    termination.write_json({"message": message, "transient": transient})
    sys.exit(1)
