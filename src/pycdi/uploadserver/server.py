"""Run the upload server until the upload is done (or its background processing failed, or SIGTERM)."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ..datapath import importer
from .app import UploadServer
from .config import ServerConfig

log = logging.getLogger(__name__)
#: How long a finished server waits for its last response to be written before closing connections.
SHUTDOWN_TIMEOUT = 10.0
#: Request body buffer: large reads mean fewer pauses of the socket and fewer, larger chunks to hand on.
READ_BUFFER = 1 << 20


class Interrupted(Exception):
    """SIGTERM or SIGINT before the upload finished."""


async def serve(config: ServerConfig, *, started: asyncio.Event | None = None) -> importer.ImportResult:
    """Serve until done; returns the import's result, or raises the async processing error or Interrupted."""
    server = UploadServer(config)
    runner = web.AppRunner(server.app(), handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           read_bufsize=READ_BUFFER)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, config.bind_address, config.bind_port, ssl_context=server.ssl_context())
        await site.start()
        log.info("Running server on %s:%d", config.bind_address, config.bind_port)
        if started is not None:
            started.set()
        finished = asyncio.create_task(server.finished.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finished.cancel()
        stopping.cancel()
    finally:
        # Graceful: the handler that finished the upload still writes its answer.
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if server.failure is not None:
        raise server.failure
    if server.result is None:
        raise Interrupted("the upload server was stopped before an upload completed")
    log.info("Shutting down http server after successful upload")
    return server.result
