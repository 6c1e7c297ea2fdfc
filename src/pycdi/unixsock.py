"""Unix socket addresses for paths longer than the kernel takes (108 bytes): named through an open descriptor of
their directory (`/proc/self/fd/N/name`), which bind and connect resolve like any path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

#: `sun_path` holds 108 bytes, its terminating NUL included.
MAX_PATH: Final = 107


@contextmanager
def address(path: str) -> Iterator[str]:
    """An address naming `path` for `bind` or `connect`, valid inside the block."""
    if len(os.fsencode(path)) <= MAX_PATH:
        yield path
        return
    directory, name = os.path.split(path)
    fd = os.open(directory or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)
