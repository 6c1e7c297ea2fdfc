"""The transfer controller's reads and writes: fresh reads straight from the API (a transfer must never act on a
stale cache), optimistic writes (resourceVersion), every write counted for the crash test hook."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ...kube.client import KubeClient
from ...kube.errors import Conflict, NotFound
from ...kube.resources import Resource
from . import state
from .crashhook import CrashHook

Obj = dict[str, Any]
OBJECT_TRANSFERS = Resource("cdi.kubevirt.io", "v1beta1", "objecttransfers", "ObjectTransfer", False)


class Api:
    def __init__(self, client: KubeClient, hook: CrashHook) -> None:
        self.client = client
        self.hook = hook

    async def get(self, resource: Resource, name: str, namespace: str = "") -> Obj | None:
        try:
            return await self.client.get(resource, name, namespace or None)
        except NotFound:
            return None

    async def create(self, resource: Resource, body: Obj) -> Obj:
        created = await self.client.create(resource, body)
        self.hook.wrote(f"create {resource.plural} {_key(body)}")
        return created

    async def update(self, resource: Resource, body: Obj) -> Obj:
        """PUT with the body's resourceVersion: a concurrent change answers Conflict and the reconcile retries."""
        updated = await self.client.update(resource, body)
        self.hook.wrote(f"update {resource.plural} {_key(body)}")
        return updated

    async def update_status(self, resource: Resource, body: Obj) -> Obj:
        updated = await self.client.update_status(resource, body)
        self.hook.wrote(f"update {resource.plural}/status {_key(body)}")
        return updated

    async def delete(self, resource: Resource, obj: Obj, uid: str | None = None) -> bool:
        """Delete exactly that object (a UID precondition): False when it is gone or was replaced meanwhile."""
        meta = obj["metadata"]
        try:
            await self.client.delete(resource, meta["name"], meta.get("namespace") or None,
                                     uid=uid or meta.get("uid"))
        except NotFound:
            return False
        except Conflict:
            return False  # another object of that name now: not the one we meant
        self.hook.wrote(f"delete {resource.plural} {_key(obj)}")
        return True


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))


_KEEP: Any = object()


@dataclass
class Transfer:
    """One reconcile's ObjectTransfer: the object as last read or written, and its status writes."""

    ot: Obj
    api: Api

    @property
    def name(self) -> str:
        return str(self.ot["metadata"]["name"])

    @property
    def uid(self) -> str:
        return str(self.ot["metadata"].get("uid", ""))

    @property
    def phase(self) -> str:
        return str((self.ot.get("status") or {}).get("phase", ""))

    @property
    def data(self) -> dict[str, str]:
        return dict((self.ot.get("status") or {}).get("data") or {})

    @property
    def deleting(self) -> bool:
        return bool(self.ot["metadata"].get("deletionTimestamp"))

    @property
    def source_namespace(self) -> str:
        return str(state.source(self.ot).get("namespace") or "")

    @property
    def source_name(self) -> str:
        return str(state.source(self.ot).get("name") or "")

    @property
    def target_namespace(self) -> str:
        return state.target_namespace(self.ot)

    @property
    def target_name(self) -> str:
        return state.target_name(self.ot)

    async def set(self, message: str, reason: str = "", *, done: bool = False, phase: str | None = None,
                  data: dict[str, str] | None = _KEEP) -> None:
        """setAndUpdateCompleteCondition (and the phase/data with it): written only when something changed."""
        old = self.ot.get("status") or {}
        status = copy.deepcopy(old)
        if phase is not None:
            status["phase"] = phase
        if data is not _KEEP:
            if data:
                status["data"] = dict(data)
            else:
                status.pop("data", None)
        state.set_condition(status, state.TRUE if done else state.FALSE, message, reason)
        if status == old:
            return
        body = copy.deepcopy(self.ot)
        body["status"] = status
        self.ot = await self.api.update_status(OBJECT_TRANSFERS, body)

    async def running(self, data: dict[str, str] | None = _KEEP) -> None:
        """setCompleteConditionRunning."""
        await self.set(state.MSG_RUNNING, phase=state.P.RUNNING, data=data)
