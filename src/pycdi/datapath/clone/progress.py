"""Clone progress: upstream's `kubevirt_cdi_clone_progress` counter (percent, label ownerUID), served for scraping."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, start_http_server

METRIC_NAME = "kubevirt_cdi_clone_progress"


class CloneProgress:
    """A monotone percentage: the counter only grows, as upstream's does."""

    def __init__(self, owner_uid: str = "") -> None:
        self.registry = CollectorRegistry()
        counter = Counter(METRIC_NAME, "The clone progress in percentage", ["ownerUID"], registry=self.registry)
        self._child = counter.labels(ownerUID=owner_uid)
        self.value = 0.0

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(server.server_port)

    def set(self, percent: float) -> None:
        percent = min(100.0, max(0.0, percent))
        if percent > self.value:
            self._child.inc(percent - self.value)
            self.value = percent
