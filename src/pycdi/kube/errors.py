"""Errors the Kubernetes API answered: `APIStatusError` carrying the `Status`, with one subclass per common reason."""

from __future__ import annotations

from typing import Any


class APIStatusError(Exception):
    def __init__(self, code: int, reason: str, message: str, status: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status or {}

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409


class NotFound(APIStatusError):
    """404: the object (or the resource itself) does not exist."""


class Conflict(APIStatusError):
    """409 Conflict: a stale resourceVersion or a failed precondition; re-read and retry."""


class AlreadyExists(APIStatusError):
    """409 AlreadyExists: a create found an object of that name."""


class Forbidden(APIStatusError):
    """403: RBAC or an admission plug-in refused the request."""


class Invalid(APIStatusError):
    """422: the object failed validation; `causes` lists the fields."""

    @property
    def causes(self) -> list[dict[str, Any]]:
        details = self.status.get("details") or {}
        return list(details.get("causes") or [])


class Gone(APIStatusError):
    """410: the resourceVersion asked for was compacted away; relist."""


def status_error(code: int, status: dict[str, Any]) -> APIStatusError:
    """The exception for a failed response: its HTTP code and decoded `Status` body."""
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    cls: type[APIStatusError] = APIStatusError
    if code == 404:
        cls = NotFound
    elif code == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif code == 403:
        cls = Forbidden
    elif code == 422:
        cls = Invalid
    elif code == 410:
        cls = Gone
    return cls(code, reason, message, status)
