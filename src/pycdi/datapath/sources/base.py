"""What every import source offers the pipeline: a probe, a byte stream, and (when it has one) a ranged HTTP URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .http import HttpConfig


@dataclass(frozen=True)
class Probe:
    """What the source says about the data before the transfer."""

    size: int | None
    accepts_ranges: bool
    content_type: str
    url: str  # after redirects


class SourceStream(Protocol):
    """The data, read sequentially; `count` of `length` bytes (the transferred form) drive progress."""

    length: int | None
    count: int

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class Source(Protocol):
    """One place data is imported from (HTTP, a registry image's disk, an S3 object)."""

    @property
    def name(self) -> str:
        """How messages name the source (its URL or image reference)."""
        ...

    def probe(self) -> Probe: ...

    def open(self) -> SourceStream: ...

    def ranged(self) -> HttpConfig | None:
        """An HTTP(S) location of the same bytes that nbdkit's curl plugin can read by ranges, or None."""
        ...
