"""Typed import failures: permanent ones end the import, transient ones may be retried by the controller."""

from __future__ import annotations


class DataPathError(Exception):
    """A failure of the worker's data path; `str(err)` is the user-facing message."""

    #: Whether retrying the same import can succeed (the controller backs off and retries only these).
    transient = False


class PermanentError(DataPathError):
    """Retrying will not help: 404, auth refused, invalid or malicious image, too small, checksum mismatch."""


class TransientError(DataPathError):
    """The source or link may recover: connection reset, 5xx, timeouts."""

    transient = True


class ScratchSpaceRequired(DataPathError):
    """This import needs a scratch volume and none is mounted (the controller adds one and restarts)."""

    def __init__(self, message: str = "scratch space required and none found") -> None:
        super().__init__(message)
