"""The upload server's HTTP side (upstream's uploadserver.go): one upload at a time streamed into the import
pipeline; sync, async, form and archive endpoints; only the proxy's client certificate may upload."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiohttp import BodyPartReader, web

from ..api import upload as u
from ..datapath import importer
from ..datapath.errors import DataPathError, PermanentError, TransientError
from ..datapath.sources.upload import ConsumerGone, StreamFeed, UploadSource
from .config import ServerConfig

log = logging.getLogger(__name__)

#: Read size for request bodies and form parts.
CHUNK = 1 << 20
#: Phrases of the data path's out-of-space errors (upstream tells them apart with IsNoCapacityError).
_NO_CAPACITY = ("larger than the reported available storage", "A larger PVC is required",
                "No space left on device")


class Mode(Enum):
    SYNC = "sync"
    ASYNC = "async"
    ARCHIVE = "archive"


@dataclass(frozen=True)
class Route:
    mode: Mode
    form: bool = False


def routes() -> dict[str, Route]:
    """Path -> what it does, for every upload path upstream serves."""
    table: dict[str, Route] = {}
    table.update({p: Route(Mode.SYNC) for p in u.SYNC_UPLOAD_PATHS})
    table.update({p: Route(Mode.ASYNC) for p in u.ASYNC_UPLOAD_PATHS})
    table.update({p: Route(Mode.ARCHIVE) for p in u.ARCHIVE_UPLOAD_PATHS})
    table.update({p: Route(Mode.SYNC, form=True) for p in u.SYNC_FORM_PATHS})
    table.update({p: Route(Mode.ASYNC, form=True) for p in u.ASYNC_FORM_PATHS})
    return table


def is_no_capacity(err: BaseException) -> bool:
    text = str(err)
    return any(phrase in text for phrase in _NO_CAPACITY)


def error_response(err: BaseException) -> web.Response:
    """handleStreamError: out of space and bad input are the client's (400), the rest ours (500)."""
    if is_no_capacity(err):
        status, text = 400, f"effective image size is larger than the reported available storage: {err}"
    elif isinstance(err, (PermanentError, TransientError)):
        status, text = 400, str(err)
    else:
        status, text = 500, str(err) or type(err).__name__
    log.error("Saving stream failed: %s", text)
    return web.Response(status=status, text=f"Saving stream failed: {text}")


def peer_common_names(request: web.Request) -> list[str]:
    """CNs of the verified client certificate (empty when the client sent none or it did not verify)."""
    cert = request.transport.get_extra_info("peercert") if request.transport is not None else None
    if not cert:
        return []
    names = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.append(str(value))
    return names


class UploadServer:
    """The state machine: idle -> uploading (-> processing, async) -> done; a failed upload returns to idle."""

    def __init__(self, config: ServerConfig, *, run_import: Callable[[importer.ImportRequest], Any] = importer.run,
                 ) -> None:
        self.config = config
        self._run_import = run_import
        self.uploading = False
        self.processing = False
        self.done = False
        self.result: importer.ImportResult | None = None
        #: Set when the server should stop: the upload is done, or async processing failed (`failure`).
        self.finished = asyncio.Event()
        self.failure: BaseException | None = None
        #: Set while no upload is being received (what a client may wait for before trying again).
        self.idle = asyncio.Event()
        self.idle.set()
        self._routes = routes()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- the app ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=0)
        app.router.add_route("*", u.HEALTHZ_PATH, self._healthz)
        for path in self._routes:
            app.router.add_route("*", path, self._upload)
        return app

    def ssl_context(self) -> ssl.SSLContext | None:
        """Serving cert; client certs are asked for but only checked on uploads (healthz stays open to probes)."""
        if not self.config.tls:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        assert self.config.cert_file and self.config.key_file
        ctx.load_cert_chain(self.config.cert_file, self.config.key_file)
        ctx.set_alpn_protocols(["http/1.1"])
        if self.config.client_ca_file:
            ctx.load_verify_locations(cafile=self.config.client_ca_file)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    # ---- admission --------------------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> web.Response | None:
        """validateShouldHandleRequest: POST only, the proxy's certificate, one upload at a time, not after done."""
        if request.method != "POST":
            return web.Response(status=404, text="404 page not found")
        if self.config.tls and self.config.client_ca_file:
            if self.config.client_name not in peer_common_names(request):
                log.warning("refused an upload from a client without the %s certificate", self.config.client_name)
                return web.Response(status=401, text="Unauthorized")
        elif self.config.tls:
            return web.Response(status=401, text="Unauthorized")
        if self.uploading or self.processing:
            log.warning("Got concurrent upload request")
            return web.Response(status=503, text="another upload is in progress")
        if self.done:
            log.warning("Got upload request after already done")
            return web.Response(status=409, text="the upload is already complete")
        self.uploading = True
        self.idle.clear()
        return None

    # ---- uploads ----------------------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        route = self._routes[request.path]
        if route.mode is Mode.ASYNC and request.method == "HEAD":
            return web.Response(status=200)  # clients probe for async support this way
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            return await self._receive(request, route)
        finally:
            self.uploading = False
            self.idle.set()

    async def _receive(self, request: web.Request, route: Route) -> web.StreamResponse:
        log.info("Content type header is %r", request.headers.get(u.CONTENT_TYPE_HEADER, ""))
        loop = asyncio.get_running_loop()
        feed = StreamFeed(loop)
        length = None if route.form else request.content_length
        source = UploadSource(feed, length, request.content_type)
        archive = route.mode is Mode.ARCHIVE
        job_request = importer.ImportRequest(
            source="upload", target=self.config.target, reader=source,
            content_type=importer.ARCHIVE if archive else importer.KUBEVIRT,
            scratch_dir=self.config.scratch_dir, preallocation=self.config.preallocation)
        job = asyncio.ensure_future(asyncio.to_thread(self._import, job_request, feed))
        chunks = _form_file(request) if route.form else _body(request)
        complete = await _pump(chunks, feed)
        if route.mode is Mode.ASYNC and complete and not job.done():
            # Every byte is here: answer now and finish (convert, resize) in the background.
            self.processing = True
            task = asyncio.create_task(self._finish_async(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            log.info("Returning success to caller, continue processing in background")
            return web.Response(status=200)
        try:
            result = await job
        except Exception as err:  # every failure answers; the pod stays ready for another try
            return error_response(err)
        self._succeed(result)
        return web.Response(status=200)

    def _import(self, request: importer.ImportRequest, feed: StreamFeed) -> importer.ImportResult:
        try:
            result: importer.ImportResult = self._run_import(request)
            return result
        finally:
            feed.close()

    async def _finish_async(self, job: Awaitable[importer.ImportResult]) -> None:
        try:
            result = await job
        except Exception as err:
            # As upstream: the server ends with the error and the pod restarts for another upload.
            log.error("Error during resumed processing: %s", err)
            self.processing = False
            self.failure = err
            self.finished.set()
            return
        self.processing = False
        self._succeed(result)

    def _succeed(self, result: importer.ImportResult) -> None:
        self.done = True
        self.result = result
        log.info("Wrote data to %s (%s)", self.config.target.disk_path, result.path)
        self.finished.set()


async def _pump(chunks: AsyncIterator[bytes], feed: StreamFeed) -> bool:
    """Feed the body to the pipeline; True when all of it was delivered. A broken body aborts the feed (the
    pipeline then fails and its partial output is discarded); a pipeline that stopped reading ends the pump."""
    try:
        async for chunk in chunks:
            await feed.put(chunk)
    except ConsumerGone:
        return False
    except DataPathError as err:
        feed.abort(err)
        return False
    except asyncio.CancelledError:
        feed.abort(TransientError("the upload was interrupted"))
        raise
    except Exception as err:  # the client went away or sent a malformed body
        log.warning("upload interrupted: %r", err)
        feed.abort(TransientError(f"the upload was interrupted: {err or type(err).__name__}"))
        return False
    feed.finish()
    return True


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    async for data in request.content.iter_chunked(CHUNK):
        yield data


async def _form_file(request: web.Request) -> AsyncIterator[bytes]:
    """formReadCloser: the multipart part named `file`; other parts are skipped."""
    try:
        reader = await request.multipart()
    except (ValueError, KeyError, AssertionError) as err:
        raise PermanentError(f"the request is not a multipart form: {err}") from err
    while True:
        part = await reader.next()
        if part is None:
            raise PermanentError(f"the form has no {u.FORM_FILE_FIELD!r} field")
        if isinstance(part, BodyPartReader) and part.name == u.FORM_FILE_FIELD:
            while True:
                data = await part.read_chunk(CHUNK)
                if not data:
                    return
                yield data
        log.info("Ignoring part %s", getattr(part, "name", ""))
        await part.release()
