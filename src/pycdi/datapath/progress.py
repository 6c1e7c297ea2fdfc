"""Import progress: upstream's Prometheus counter (percent, label ownerUID), optionally served, and a file."""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, start_http_server

#: `prometheus_client` appends `_total` to counters: the scraped name is `kubevirt_cdi_import_progress_total`.
METRIC_NAME = "kubevirt_cdi_import_progress"
_FILE_INTERVAL = 0.5


class Progress:
    """Monotone percentage of the import; the counter only grows, as upstream's does."""

    def __init__(self, owner_uid: str = "", file_path: str | None = None) -> None:
        self.owner_uid = owner_uid
        self.file_path = file_path
        self.registry = CollectorRegistry()
        self._counter = Counter(METRIC_NAME, "The import progress in percentage", ["ownerUID"], registry=self.registry)
        self._child = self._counter.labels(ownerUID=owner_uid)
        self.value = 0.0
        self._written_at = 0.0

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Serve /metrics; returns the bound port (0 picks one)."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(server.server_port)

    def set(self, percent: float) -> None:
        percent = min(100.0, max(0.0, percent))
        if percent <= self.value:
            return
        self._child.inc(percent - self.value)
        self.value = percent
        now = time.monotonic()
        if self.file_path and (now - self._written_at >= _FILE_INTERVAL or percent >= 100.0):
            self._written_at = now
            self._write()

    def scaled(self, low: float, high: float) -> _Scaled:
        """A reporter mapping 0..100 of one phase onto low..high of the whole import."""
        return _Scaled(self, low, high)

    def _write(self) -> None:
        assert self.file_path is not None
        tmp = f"{self.file_path}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{self.value:.2f}\n")
        os.replace(tmp, self.file_path)


class _Scaled:
    def __init__(self, progress: Progress, low: float, high: float) -> None:
        self._p = progress
        self._low = low
        self._span = high - low

    def __call__(self, percent: float) -> None:
        self._p.set(self._low + self._span * percent / 100.0)
