"""A forward-only tar reader over a stream: headers (ustar, PAX, GNU long names) and member data, no seeking,
no copies of more than one read (tarfile's stream mode re-slices its whole buffer on every header)."""

from __future__ import annotations

import tarfile
from dataclasses import dataclass

from ...errors import PermanentError
from ...formats import Readable

BLOCK = 512
CHUNK = 1 << 20
#: PAX and GNU long-name records larger than this are refused: they are held in memory.
MAX_META = 1 << 20
_NO_DATA = frozenset({tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE,
                      tarfile.FIFOTYPE})
_REGULAR = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE})
_ZERO_BLOCK = bytes(BLOCK)


@dataclass(frozen=True)
class Entry:
    """One member's header, its PAX/GNU extensions applied."""

    name: str
    type: bytes
    size: int
    linkname: str = ""
    sparse: bool = False

    def isreg(self) -> bool:
        return self.type in _REGULAR and not self.sparse

    def isdir(self) -> bool:
        return self.type == tarfile.DIRTYPE

    def kind(self) -> str:
        """How messages name the member's type."""
        if self.sparse or self.type == tarfile.GNUTYPE_SPARSE:
            return "sparse file"
        return {tarfile.SYMTYPE: "symbolic link", tarfile.LNKTYPE: "hard link", tarfile.DIRTYPE: "directory",
                tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                tarfile.FIFOTYPE: "FIFO"}.get(self.type, "regular file" if self.type in _REGULAR else "special file")


def _pax_records(data: bytes, what: str) -> dict[str, str]:
    """`<length> <key>=<value>\\n` records."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding after the last record
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise PermanentError(f"{what}: malformed PAX header") from None
        if space < 0 or length <= space - pos or pos + length > len(data):
            raise PermanentError(f"{what}: malformed PAX header")
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarStream:
    """Members of a tar read from `inner` in order: `next()` gives the next header, `read()` its data."""

    def __init__(self, inner: Readable, what: str) -> None:
        self._inner = inner
        self._what = what
        self._buf = b""
        self._pos = 0
        self._left = 0  # data bytes of the current member not read yet
        self._pad = 0  # then these padding bytes
        self.ended = False

    def _take(self, n: int) -> bytes:
        """Up to `n` bytes (fewer only at a buffer edge); b"" at the end of the stream."""
        if self._pos >= len(self._buf):
            self._buf = self._inner.read(CHUNK)
            self._pos = 0
            if not self._buf:
                return b""
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def _exact(self, n: int, inside: str) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            data = self._take(n - got)
            if not data:
                raise PermanentError(f"{self._what} ends inside {inside}")
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _skip(self, n: int, inside: str) -> None:
        while n > 0:
            data = self._take(n)
            if not data:
                raise PermanentError(f"{self._what} ends inside {inside}")
            n -= len(data)

    def read(self, size: int = -1, /) -> bytes:
        """Data of the current member; b"" at its end."""
        if self._left <= 0:
            return b""
        want = self._left if size < 0 else min(size, self._left)
        data = self._take(min(want, CHUNK))
        if not data:
            raise PermanentError(f"{self._what} ends inside a member's data")
        self._left -= len(data)
        return data

    def next(self) -> Entry | None:
        """The next member's header (the rest of the current member skipped); None at the end of the archive."""
        if self.ended:
            return None
        self._skip(self._left + self._pad, "a member's data")
        self._left = self._pad = 0
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            block = self._take(BLOCK)
            if len(block) < BLOCK:
                block += self._exact(BLOCK - len(block), "a header") if block else b""
            if not block or block == _ZERO_BLOCK:  # end-of-archive blocks (or a stream that simply stops)
                self.ended = True
                return None
            try:
                info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.TarError as err:
                raise PermanentError(f"{self._what} is not a valid tar archive: {err}") from None
            size = info.size
            pad = -size % BLOCK
            if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
                if size > MAX_META:
                    raise PermanentError(f"{self._what} has a {size}-byte extended header; at most {MAX_META}")
                data = self._exact(size, "an extended header")
                self._skip(pad, "an extended header")
                if info.type == tarfile.XHDTYPE:
                    pax.update(_pax_records(data, self._what))
                elif info.type == tarfile.GNUTYPE_LONGNAME:
                    long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                elif info.type == tarfile.GNUTYPE_LONGLINK:
                    long_link = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                continue  # global PAX headers carry nothing we use
            if info.type == tarfile.GNUTYPE_SPARSE:
                extended = block[482]
                while extended:  # old GNU sparse maps continue in extra header blocks
                    extended = self._exact(BLOCK, "a sparse header")[504]
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise PermanentError(f"{self._what}: malformed PAX size {pax['size']!r}") from None
                pad = -size % BLOCK
            name = pax.get("path") or long_name or info.name
            entry = Entry(name, info.type, size, pax.get("linkpath") or long_link or info.linkname,
                          sparse=any(k.startswith("GNU.sparse.") for k in pax))
            if info.type in _NO_DATA:
                size = pad = 0
            self._left, self._pad = size, pad
            return entry
