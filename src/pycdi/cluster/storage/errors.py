"""StorageError: a failed volume or copy operation, naming the path and the OS error instead of a traceback."""

from __future__ import annotations

import errno as errno_module
import os
from pathlib import Path


class StorageError(Exception):
    """An operation on a volume, device or file failed.

    `path` is the file the operation failed on and `errno` the OS error number (0 when the failure is
    not an OS error, such as a size that is too small); the message says both in words.
    """

    def __init__(self, message: str, path: Path | str, errno: int = 0) -> None:
        self.path = Path(path)
        self.errno = errno
        self.reason = message
        detail = f": {os.strerror(errno)} [{errno_module.errorcode.get(errno, errno)}]" if errno else ""
        super().__init__(f"{message}: {path}{detail}")

    @classmethod
    def from_os(cls, message: str, path: Path | str, error: OSError) -> StorageError:
        """Wrap an OSError; the path is the one the caller was working on, the errno the OS's."""
        err = cls(message, path, error.errno or 0)
        err.__cause__ = error
        return err
