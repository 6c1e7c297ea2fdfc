"""Byte progress for long transfers: a tqdm bar (bytes, rate, ETA) on a terminal, plain lines otherwise."""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO

from tqdm import tqdm

#: Seconds between two plain lines (logs and CI output want a few lines, not one per chunk).
LINE_INTERVAL = 5.0


def _size(n: float) -> str:
    """Binary units as virtctl's bar prints them: `512.00 MiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class ByteProgress:
    """Counts bytes sent by any thread; `close()` ends the bar (or prints the last line)."""

    def __init__(self, total: int, out: TextIO, *, terminal: bool | None = None,
                 line_interval: float = LINE_INTERVAL) -> None:
        self.total = total
        self.out = out
        self.terminal = out.isatty() if terminal is None else terminal
        self.line_interval = line_interval
        self.done = 0
        self._lock = threading.Lock()
        self._bar: tqdm[Any] | None = None
        self._started = self._last_line = time.monotonic()
        if self.terminal:
            # The full bar as virtctl's (cheggaaa/pb "full"): count, bar, percent, rate, time left.
            # Binary units: tqdm prints the scale prefix ("64.0M"), the format adds "iB".
            self._bar = tqdm(total=total, file=out, unit="iB", unit_scale=True, unit_divisor=1024, dynamic_ncols=True,
                             bar_format="{n_fmt}iB / {total_fmt}iB [{bar}] {percentage:.2f}% {rate_fmt} {remaining}",
                             mininterval=0.2)

    def update(self, n: int) -> None:
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
                return
            now = time.monotonic()
            if now - self._last_line >= self.line_interval:
                self._last_line = now
                self._line(now)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            elif not self.terminal:
                self._line(time.monotonic())

    def _line(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        percent = 100.0 * self.done / self.total if self.total else 100.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        self.out.write(f"{_size(self.done)} / {_size(self.total)} ({percent:.1f}%), {_size(rate)}/s, "
                       f"{tqdm.format_interval(left)} left\n")
        self.out.flush()
