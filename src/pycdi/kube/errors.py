"""Errors the Kubernetes API answered, as one exception type carrying the `Status`."""

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
