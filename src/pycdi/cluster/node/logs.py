"""`kubectl logs` for agent-run pods: the container's log file, its previous instance's, or a live follow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ..apiserver import errors
from ..apiserver.service import ObjectService

Obj = dict[str, Any]
#: (pod uid, container) -> whether that container is running now (a follow ends when it stops).
RunningCheck = Callable[[str, str], bool]

FOLLOW_POLL_SECONDS = 0.1
CHUNK = 64 * 1024


def log_path(pods_dir: Path, uid: str, container: str, previous: bool = False) -> Path:
    return pods_dir / uid / (f"{container}.previous.log" if previous else f"{container}.log")


def tail(data: bytes, lines: int) -> bytes:
    """The last `lines` lines (a final line without newline counts), as the kubelet's tail does."""
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


class LogReader:
    """The pods/log hook: returns text, or an async byte stream for `follow=true`."""

    def __init__(self, service: ObjectService, pods_dir: Path, running: RunningCheck) -> None:
        self.service = service
        self.pods_dir = pods_dir
        self.running = running
        info = service.catalog.preferred("", "pods")
        assert info is not None, "the catalog always serves pods"
        self.info = info

    async def __call__(self, namespace: str, name: str, container: str, query: dict[str, str]
                       ) -> str | AsyncIterator[bytes]:
        pod = self.service.get(self.info, namespace, name)
        uid = str(pod["metadata"].get("uid"))
        status = self._container_status(pod, container)
        if _truthy(query.get("previous")):
            path = log_path(self.pods_dir, uid, container, previous=True)
            if not path.exists():
                raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            return self._text(path, query)
        path = log_path(self.pods_dir, uid, container)
        waiting = (status.get("state") or {}).get("waiting")
        if not path.exists():
            reason = (waiting or {}).get("reason") or "ContainerCreating"
            raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        if _truthy(query.get("follow")):
            return self._follow(path, uid, container, query)
        return self._text(path, query)

    @staticmethod
    def _container_status(pod: Obj, container: str) -> Obj:
        status = pod.get("status") or {}
        for entry in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            if isinstance(entry, dict) and entry.get("name") == container:
                return entry
        return {}

    @staticmethod
    def _select(data: bytes, query: dict[str, str]) -> bytes:
        if query.get("tailLines"):
            try:
                data = tail(data, int(query["tailLines"]))
            except ValueError:
                raise errors.bad_request(f"invalid tailLines: {query['tailLines']}") from None
        if query.get("limitBytes"):
            try:
                data = data[:int(query["limitBytes"])]
            except ValueError:
                raise errors.bad_request(f"invalid limitBytes: {query['limitBytes']}") from None
        return data

    def _text(self, path: Path, query: dict[str, str]) -> str:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        return self._select(data, query).decode(errors="replace")

    async def _follow(self, path: Path, uid: str, container: str, query: dict[str, str]) -> AsyncIterator[bytes]:
        # Opened once: if the container restarts, the file is renamed to .previous.log and this follow
        # keeps reading the instance it started with, as `kubectl logs -f` does.
        with open(path, "rb") as f:
            first = self._select(f.read(), {k: v for k, v in query.items() if k != "limitBytes"})
            if first:
                yield first
            while True:
                chunk = f.read(CHUNK)
                if chunk:
                    yield chunk
                    continue
                if not self.running(uid, container):
                    rest = f.read()
                    if rest:
                        yield rest
                    return
                await asyncio.sleep(FOLLOW_POLL_SECONDS)  # files have no portable change notification
