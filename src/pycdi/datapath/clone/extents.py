"""Where a volume's data is: the data extents of a file (SEEK_DATA/SEEK_HOLE), or of a loop device's backing file.

A Block volume here is a loop device over a sparse file (or the sparse file itself): asking its backing file for
holes lets a clone read only what was ever written instead of the whole device. A device without a known backing
file is all data (the zero blocks in it are still skipped by the sender).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SYS_BLOCK = Path("/sys/block")
LOOP_MAJOR = 7
_DELETED = " (deleted)"


def device_size(fd: int) -> int:
    """The size of an open file or block device."""
    return os.lseek(fd, 0, os.SEEK_END)


def _loop_backing(path: str) -> tuple[Path, int] | None:
    """(backing file, offset) of a loop device, None when it is not one or is detached."""
    st = os.stat(path)
    if not stat.S_ISBLK(st.st_mode) or os.major(st.st_rdev) != LOOP_MAJOR:
        return None
    sysfs = SYS_BLOCK / Path(os.path.realpath(path)).name / "loop"
    try:
        backing = (sysfs / "backing_file").read_text().rstrip("\n")
        offset = int((sysfs / "offset").read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if backing.endswith(_DELETED) or not backing:
        return None
    return Path(backing), offset


@dataclass
class Extents:
    """An open volume to read from, and the file descriptor that knows its holes (-1: none does)."""

    fd: int
    size: int
    holes_fd: int = -1
    #: Where the volume starts in the file `holes_fd` describes.
    base: int = 0

    @property
    def read_fd(self) -> int:
        """Where to read the bytes: a loop device's backing file directly (the loop driver in between only slows
        reading down; with no writer left, as a clone source has none, the file is what the device shows)."""
        return self.holes_fd if self.holes_fd >= 0 else self.fd

    @property
    def read_base(self) -> int:
        return self.base if self.holes_fd >= 0 else 0

    def close(self) -> None:
        if self.holes_fd >= 0 and self.holes_fd != self.fd:
            os.close(self.holes_fd)
        os.close(self.fd)

    def data(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
        """(offset, length) of every range of [start, end) that may hold non-zero bytes, in order."""
        end = self.size if end is None else min(end, self.size)
        if self.holes_fd < 0:
            if end > start:
                yield start, end - start
            return
        pos = start
        while pos < end:
            try:
                data = os.lseek(self.holes_fd, self.base + pos, os.SEEK_DATA) - self.base
            except OSError as e:
                if e.errno == errno.ENXIO:
                    return  # only a hole is left
                if e.errno == errno.EINVAL:
                    yield pos, end - pos  # no SEEK_DATA on this filesystem: all data
                    return
                raise
            if data >= end:
                return
            hole = min(os.lseek(self.holes_fd, self.base + data, os.SEEK_HOLE) - self.base, end)
            yield data, hole - data
            pos = hole


def open_volume(path: str, *, write: bool = False) -> Extents:
    """Open a volume (a file, or a block device with its loop backing file when it has one), read-only unless
    `write`."""
    fd = os.open(path, (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        size = device_size(fd)
        if not stat.S_ISBLK(st.st_mode):
            return Extents(fd, size, fd, 0)
        backing = _loop_backing(path)
        if backing is not None and backing[0].is_file():
            # What was written through the device and is still in its cache reaches the backing file first.
            os.fsync(fd)
            return Extents(fd, size, os.open(backing[0], os.O_RDONLY | os.O_CLOEXEC), backing[1])
        return Extents(fd, size, -1, 0)
    except BaseException:
        os.close(fd)
        raise
