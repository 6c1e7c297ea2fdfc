"""The `file` part of a multipart/form-data body as a stream (upstream's formReadCloser): parts before it are
skipped, and once its bytes are out the rest of the body is read and dropped, so the request ends."""

from __future__ import annotations

import logging
from email.message import Message

from ..api import upload as u
from ..datapath.errors import PermanentError
from ..datapath.sources.upload import BodyReader

log = logging.getLogger(__name__)

#: Body bytes read at a time; the buffer holds at most this plus a delimiter.
CHUNK = 1 << 20


def boundary(content_type: str) -> bytes:
    """The form's boundary from its Content-Type header; a non-form body is the client's error."""
    if not content_type.strip().lower().startswith("multipart/"):
        raise PermanentError("the request is not a multipart form: multipart/* content type expected")
    message = Message()
    message["content-type"] = content_type
    value = message.get_param("boundary")
    if not isinstance(value, str) or not value:
        raise PermanentError(f"the request is not a multipart form: boundary missed for Content-Type: "
                             f"{content_type}")
    return value.encode("latin-1")


def part_name(head: bytes) -> str:
    """The `name` of a part's Content-Disposition (empty when it has none)."""
    message = Message()
    for line in head.decode("latin-1").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            message[key.strip()] = value.strip()
    name = message.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else ""


class FormFile:
    """Reads the `file` field's bytes out of a form body (`BodyReader`)."""

    def __init__(self, body: BodyReader, content_type: str) -> None:
        self._body = body
        self._content_type = content_type
        self._delimiter = b""
        # The leading CRLF lets the first boundary (which starts the body) match like every later one.
        self._buf = bytearray(b"\r\n")
        self._scratch = memoryview(bytearray(CHUNK))
        self._state = "start"  # -> "file" -> "done"
        self._ready = 0
        self._at_delimiter = False

    def _fill(self) -> bool:
        n = self._body.readinto(self._scratch)
        self._buf += self._scratch[:n]
        return n > 0

    def _need(self, size: int, what: str) -> None:
        while len(self._buf) < size:
            if not self._fill():
                raise PermanentError(f"the form ends inside {what}")

    def _skip_to_delimiter(self) -> None:
        """Drop bytes up to and including the next delimiter."""
        while True:
            found = self._buf.find(self._delimiter)
            if found >= 0:
                del self._buf[:found + len(self._delimiter)]
                return
            keep = len(self._delimiter) - 1  # a delimiter may start in the last bytes
            if len(self._buf) > keep:
                del self._buf[:len(self._buf) - keep]
            if not self._fill():
                raise PermanentError(f"the form has no {u.FORM_FILE_FIELD!r} field")

    def _open_file_part(self) -> None:
        self._delimiter = b"\r\n--" + boundary(self._content_type)
        while True:
            self._skip_to_delimiter()
            self._need(2, "a boundary")
            if self._buf.startswith(b"--"):  # the closing delimiter: no part is left
                raise PermanentError(f"the form has no {u.FORM_FILE_FIELD!r} field")
            while (end := self._buf.find(b"\r\n\r\n")) < 0:
                if len(self._buf) > 64 << 10:
                    raise PermanentError("a form part's header is too large")
                self._need(len(self._buf) + 1, "a part's header")
            # The boundary line's end (after optional padding) and the part's header fields.
            line_end = self._buf.find(b"\r\n")
            head = bytes(self._buf[line_end + 2:end]) if line_end < end else b""
            del self._buf[:end + 4]
            name = part_name(head)
            if name == u.FORM_FILE_FIELD:
                self._state = "file"
                return
            log.info("Ignoring part %s", name)

    def readinto(self, view: memoryview, /) -> int:
        if self._state == "start":
            self._open_file_part()
            self._scan()
        if self._state == "done" or not len(view):
            return 0
        while not self._ready:
            if self._at_delimiter:
                self._state = "done"
                self._buf.clear()
                while self._fill():  # the rest of the body (later parts, the epilogue) is not ours
                    self._buf.clear()
                return 0
            if not self._fill():
                raise PermanentError(f"the form ends inside its {u.FORM_FILE_FIELD!r} part")
            self._scan()
        n = min(self._ready, len(view))
        view[:n] = self._buf[:n]
        del self._buf[:n]
        self._ready -= n
        return n

    def _scan(self) -> None:
        """How many bytes at the buffer's front are the file's for sure (searched once per fill, so small
        reads cost no rescans): up to the delimiter, or short of where one may start."""
        found = self._buf.find(self._delimiter)
        self._at_delimiter = found >= 0
        self._ready = found if found >= 0 else max(0, len(self._buf) - len(self._delimiter) + 1)

    def close(self) -> None:
        self._body.close()
