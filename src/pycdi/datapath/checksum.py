"""Checksums named by the source (`md5|sha1|sha256|sha512:hex`), computed over the downloaded stream."""

from __future__ import annotations

import hashlib
import re

from .errors import PermanentError
from .formats import Readable

_ALGORITHMS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_SPEC = re.compile(r"^(md5|sha1|sha256|sha512):([0-9a-fA-F]+)$")


class ChecksumMismatch(PermanentError):
    """The downloaded bytes are not the ones the source named."""


def parse(spec: str) -> tuple[str, str]:
    """`sha256:abc...` -> ("sha256", "abc..."); a malformed spec is a permanent error."""
    m = _SPEC.match(spec.strip())
    if not m or len(m.group(2)) != _ALGORITHMS[m.group(1)]:
        raise PermanentError(
            f"invalid checksum {spec!r}: expected one of md5, sha1, sha256, sha512, a colon and the hex digest"
        )
    return m.group(1), m.group(2).lower()


class HashingReader:
    """Passes a stream through while hashing it; `verify()` once the stream is consumed."""

    def __init__(self, inner: Readable, spec: str) -> None:
        self.algorithm, self.expected = parse(spec)
        self._inner = inner
        self._hash = hashlib.new(self.algorithm)

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self._hash.update(data)
        return data

    def drain(self) -> None:
        """Hash whatever the consumer left unread (trailing bytes still belong to the file)."""
        while self.read(1 << 20):
            pass

    def verify(self) -> None:
        got = self._hash.hexdigest()
        if got != self.expected:
            raise ChecksumMismatch(
                f"checksum mismatch: expected {self.algorithm}:{self.expected}, got {self.algorithm}:{got}"
            )
