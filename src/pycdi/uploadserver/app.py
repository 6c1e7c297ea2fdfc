"""The upload server's HTTP side (upstream's uploadserver.go): one upload at a time streamed into the import
pipeline; sync, async, form and archive endpoints; only the proxy's client certificate may upload."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..api import upload as u
from ..datapath import importer
from ..datapath.errors import PermanentError, TransientError
from ..datapath.sources.upload import BodyReader, UploadSource
from . import http
from .config import ServerConfig
from .multipart import FormFile

log = logging.getLogger(__name__)

#: Phrases of the data path's out-of-space errors (upstream tells them apart with IsNoCapacityError).
_NO_CAPACITY = ("larger than the reported available storage", "A larger PVC is required",
                "No space left on device")
#: How long an answer waits for the pipeline's read in progress to end before the connection is cut instead.
RECLAIM_TIMEOUT = http.LINGER


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


def error_response(err: BaseException) -> tuple[int, str]:
    """handleStreamError: out of space and bad input are the client's (400), the rest ours (500)."""
    if is_no_capacity(err):
        status, text = 400, f"effective image size is larger than the reported available storage: {err}"
    elif isinstance(err, (PermanentError, TransientError)):
        status, text = 400, str(err)
    else:
        status, text = 500, str(err) or type(err).__name__
    log.error("Saving stream failed: %s", text)
    return status, f"Saving stream failed: {text}"


def peer_common_names(sock: socket.socket) -> list[str]:
    """CNs of the verified client certificate (empty when the client sent none or it did not verify)."""
    cert = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
    if not cert:
        return []
    subject: Any = cert.get("subject", ())
    return [str(value) for rdn in subject for key, value in rdn if key == "commonName"]


class _Upload:
    """One accepted upload: its body as the pipeline reads it, and the import's outcome.

    The pipeline reads the body on its own thread straight from the connection; reads hold `_reading`, so the
    handler can take the connection back (to answer) once no read is in progress. The end of the body and the
    end of the import are announced on the server's state condition."""

    def __init__(self, body: http.Body, state: threading.Condition) -> None:
        self._body = body
        self._state = state
        self._reading = threading.Lock()
        self._reclaimed = False
        self.body_complete = False
        self.done = False
        self.background = False
        self.result: importer.ImportResult | None = None
        self.error: BaseException | None = None

    # ---- BodyReader (the pipeline's thread) -------------------------------------------------------

    def readinto(self, view: memoryview, /) -> int:
        """Fill `view` (or reach the end): one call per pipeline buffer, however small the TLS records."""
        with self._reading:
            if self._reclaimed:
                raise TransientError("the upload was interrupted: the request was already answered")
            try:
                n = self._body.readinto(view)
            except (OSError, http.BadRequest) as err:
                log.warning("upload interrupted: %r", err)
                raise TransientError(f"the upload was interrupted: {err or type(err).__name__}") from err
            if self._body.done and not self.body_complete:
                with self._state:
                    self.body_complete = True
                    self._state.notify_all()
            return n

    def close(self) -> None:
        """The pipeline stopped reading; the handler answers once the import has ended."""

    # ---- the handler ------------------------------------------------------------------------------

    def reclaim(self) -> bool:
        """Take the connection back from the pipeline: False when a read did not end in time."""
        if not self._reading.acquire(timeout=RECLAIM_TIMEOUT):
            return False
        self._reclaimed = True
        self._reading.release()
        return True


class UploadServer:
    """The state machine: idle -> uploading (-> processing, async) -> done; a failed upload returns to idle."""

    def __init__(self, config: ServerConfig, *, run_import: Callable[[importer.ImportRequest], Any] = importer.run,
                 ) -> None:
        self.config = config
        self._run_import = run_import
        #: Guards the state below; notified on every change of it.
        self.state = threading.Condition()
        self.uploading = False
        self.processing = False
        self.done = False
        self.result: importer.ImportResult | None = None
        #: Set when the server should stop: the upload is done, or async processing failed (`failure`).
        self.finished = threading.Event()
        self.failure: BaseException | None = None
        #: Set while no upload is being received (what a client may wait for before trying again).
        self.idle = threading.Event()
        self.idle.set()
        #: Called (from any thread) once `finished` is set: the listener stops.
        self.on_finish: Callable[[], None] = lambda: None
        self._routes = routes()

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

    def wait_until(self, check: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait for a state of the server (`check` is called with `state` held)."""
        with self.state:
            return self.state.wait_for(check, timeout)

    # ---- requests ---------------------------------------------------------------------------------

    def handle(self, exchange: http.Exchange) -> None:
        """Answer one request (the connection's thread)."""
        request = exchange.request
        if request.path == u.HEALTHZ_PATH:
            exchange.respond(200, "OK")
            return
        route = self._routes.get(request.path)
        if route is None:
            exchange.respond(404, "404: Not Found")
            return
        if route.mode is Mode.ASYNC and request.method == "HEAD":
            exchange.respond(200)  # clients probe for async support this way
            return
        refusal = self._refusal(exchange)
        if refusal is not None:
            exchange.respond(*refusal)
            return
        try:
            status, text = self._receive(exchange, route)
        finally:
            # Before the answer goes out: a client told the outcome may try again at once.
            with self.state:
                self.uploading = False
                self.idle.set()
                self.state.notify_all()
        exchange.respond(status, text)

    def _refusal(self, exchange: http.Exchange) -> tuple[int, str] | None:
        """validateShouldHandleRequest: POST only, the proxy's certificate (or the local socket), one upload at a
        time, not after done."""
        if exchange.request.method != "POST":
            return 404, "404 page not found"
        if exchange.wire.local:
            pass  # the local socket: only this user can reach it (a private directory, peer credentials checked)
        elif self.config.tls and self.config.client_ca_file:
            if self.config.client_name not in peer_common_names(exchange.wire.sock):
                log.warning("refused an upload from a client without the %s certificate", self.config.client_name)
                return 401, "Unauthorized"
        elif self.config.tls:
            return 401, "Unauthorized"
        with self.state:
            if self.uploading or self.processing:
                log.warning("Got concurrent upload request")
                return 503, "another upload is in progress"
            if self.done:
                log.warning("Got upload request after already done")
                return 409, "the upload is already complete"
            self.uploading = True
            self.idle.clear()
            self.state.notify_all()
        return None

    def _receive(self, exchange: http.Exchange, route: Route) -> tuple[int, str | None]:
        """Run the upload through the pipeline; the answer to give."""
        request = exchange.request
        log.info("Content type header is %r", request.headers.get(u.CONTENT_TYPE_HEADER, ""))
        log.info("Receiving the upload over %s", "the local socket" if exchange.wire.local else "TLS")
        upload = _Upload(request.body, self.state)
        body: BodyReader = FormFile(upload, request.headers.get("content-type", "")) if route.form else upload
        source = UploadSource(body, None if route.form else request.content_length, request.content_type)
        archive = route.mode is Mode.ARCHIVE
        job_request = importer.ImportRequest(
            source="upload", target=self.config.target, reader=source,
            content_type=importer.ARCHIVE if archive else importer.KUBEVIRT,
            scratch_dir=self.config.scratch_dir, preallocation=self.config.preallocation)
        exchange.want_body()
        # The import runs on its own thread: an async upload is answered once its body is in, while it goes on.
        threading.Thread(target=self._import, args=(job_request, upload), name="import", daemon=True).start()
        with self.state:
            self.state.wait_for(lambda: upload.done or upload.body_complete)
            if route.mode is Mode.ASYNC and not upload.done:
                # Every byte is here: answer now and finish (convert, resize) in the background.
                upload.background = True
                self.processing = True
                self.state.notify_all()
        if upload.background:
            log.info("Returning success to caller, continue processing in background")
            return 200, None
        with self.state:
            self.state.wait_for(lambda: upload.done)
        if not upload.reclaim():
            raise http.Cut("the pipeline's read of the body did not end")  # the connection is cut unanswered
        if upload.error is not None:
            return error_response(upload.error)
        assert upload.result is not None
        self._succeed(upload.result)
        return 200, None

    def _import(self, request: importer.ImportRequest, upload: _Upload) -> None:
        result: importer.ImportResult | None = None
        error: BaseException | None = None
        try:
            result = self._run_import(request)
        except BaseException as err:  # every failure answers; the pod stays ready for another try
            error = err
        with self.state:
            upload.result, upload.error, upload.done = result, error, True
            background = upload.background
            self.state.notify_all()
        if background:
            self._finish_background(result, error)

    def _finish_background(self, result: importer.ImportResult | None, error: BaseException | None) -> None:
        if error is not None:
            # As upstream: the server ends with the error and the pod restarts for another upload.
            log.error("Error during resumed processing: %s", error)
            with self.state:
                self.processing = False
                self.failure = error
                self.state.notify_all()
            self._finish()
            return
        assert result is not None
        with self.state:
            self.processing = False
        self._succeed(result)

    def _succeed(self, result: importer.ImportResult) -> None:
        with self.state:
            self.done = True
            self.result = result
            self.state.notify_all()
        log.info("Wrote data to %s (%s)", self.config.target.disk_path, result.path)
        self._finish()

    def _finish(self) -> None:
        self.finished.set()
        self.on_finish()
