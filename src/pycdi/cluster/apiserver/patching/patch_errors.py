"""Errors raised by the patch engines, carrying the HTTP code kube-apiserver answers with."""

from __future__ import annotations

from typing import Any

from pycdi.cluster.apiserver.errors import APIError

# kube-apiserver wraps every failure of a well-formed JSON patch (and some strategic-merge
# failures) in NewGenericServerResponse(422, ...), whose wire message is this fixed text; the
# specific reason never reaches the client.
GENERIC_422 = "the server rejected our request due to an error in our request"

_REASONS = {400: "BadRequest", 413: "RequestEntityTooLarge", 422: "Invalid"}


class PatchError(Exception):
    """A patch that is malformed (400), too big (413) or cannot be applied to the object (422).

    `message` is what kube-apiserver puts in `Status.message`; `detail` is the specific
    explanation (kept for logs and tests; kube does not send it for 422s).
    """

    def __init__(self, code: int, message: str, detail: str = "") -> None:
        super().__init__(detail or message)
        self.code = code
        self.message = message
        self.detail = detail or message
        self.reason = _REASONS.get(code, "BadRequest")

    def api_error(self) -> APIError:
        """The `APIError` (and thus `Status`) kube-apiserver would answer with."""
        details: dict[str, Any] | None = {} if self.code == 422 else None
        return APIError(self.code, self.reason, self.message, details)


def bad_request(message: str) -> PatchError:
    return PatchError(400, message)


def unprocessable(detail: str) -> PatchError:
    return PatchError(422, GENERIC_422, detail)
