"""`pycdi importer`: the importer worker, configured by upstream CDI's environment variables."""

from __future__ import annotations

import logging
import os
import sys

import click

from ..datapath import termination
from ..datapath.config import request_from_env
from ..datapath.errors import DataPathError, ScratchSpaceRequired
from ..datapath.importer import run

log = logging.getLogger("pycdi.importer")


@click.command("importer")
def importer() -> None:
    """Import a disk image into /data/disk.img or /dev/cdi-block-volume (env: IMPORTER_SOURCE, IMPORTER_ENDPOINT...)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        request = request_from_env()
        port = os.environ.get("PYCDI_METRICS_PORT", "")
        if port:
            bound = request.progress.serve(int(port), os.environ.get("PYCDI_METRICS_ADDR", "127.0.0.1"))
            log.info("serving progress metrics on port %d", bound)
        result = run(request)
    except ScratchSpaceRequired as err:
        # Not a failure: the controller adds a scratch volume and starts the worker again (as upstream).
        termination.write_json({"scratchSpaceRequired": True, "message": str(err)})
        log.info("%s", err)
        return
    except DataPathError as err:
        _fail(f"Unable to process data: {err}", transient=err.transient)
    except FileNotFoundError as err:
        _fail(f"Unable to process data: {err}", transient=False)
    message = "Import Complete" + (", Preallocation applied" if result.preallocation_applied else "")
    termination.write_json({"message": message, "preallocationApplied": result.preallocation_applied})
    log.info("%s (%s)", message, result.path)


def _fail(message: str, *, transient: bool) -> None:
    log.error("%s", message)
    termination.write_json({"message": message, "transient": transient})
    sys.exit(1)
