"""s3 source (being written this session)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import PermanentError
from .base import Source


def from_env(env: Mapping[str, str], cert_dirs: list[str | None], insecure: bool) -> Source:
    """The s3 source the importer's environment describes."""
    raise PermanentError("the s3 source is not implemented yet")
