"""Test hook: `PYCDI_TEST_TRANSFER_EXIT_AFTER_WRITES=N` kills the process right after the transfer
controller's N-th write to the API, to prove that a crash at any step of a transfer resumes to Complete.

Only the crash tests set it (tests/functional/test_object_transfer.py): each run of `pycdi up` with N=1 makes
exactly one more write of the transfer sequence and dies as a SIGKILL would (no cleanup, no flush of anything
but this line), then the test restarts `pycdi up` on the same data directory. Armed, the transfer controller
runs one worker, so no second write is in flight when the process dies. Unset, it does nothing.
"""

from __future__ import annotations

import os
import sys

ENV = "PYCDI_TEST_TRANSFER_EXIT_AFTER_WRITES"
#: The exit status the crash tests expect from a process this hook ended.
EXIT_CODE = 86


class CrashHook:
    """Counts the transfer controller's writes; exits the process at the configured count."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.writes = 0

    @classmethod
    def from_env(cls) -> CrashHook:
        value = os.environ.get(ENV, "").strip()
        return cls(int(value) if value else None)

    @property
    def armed(self) -> bool:
        return self.limit is not None

    def wrote(self, what: str) -> None:
        self.writes += 1
        if self.limit is not None and self.writes >= self.limit:
            sys.stderr.write(f"{ENV}: exiting after transfer write {self.writes} ({what})\n")
            sys.stderr.flush()
            os._exit(EXIT_CODE)
