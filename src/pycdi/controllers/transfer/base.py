"""What the PVC and DataVolume transfers share: the last Pending checks that claim the source, and the pod cache."""

from __future__ import annotations

import copy
import json
from typing import Any

from ...api import constants as c
from ...kube.resources import Resource
from ..runtime import Informer, Result
from . import state
from .api import Api, Transfer

Obj = dict[str, Any]
#: Upstream re-checks a source in use by pods every 2 s (pod events bring us back sooner).
IN_USE_REQUEUE = 2.0
#: While waiting on others, their changes (watched) bring a transfer back; this re-check is only a safety net
#: for a change missed while the watch was away, so nothing stays stuck half-way.
RESYNC_SECONDS = 30.0
#: After an action, come back at once: the next step reads fresh state (watch events also re-queue).
NEXT = Result(requeue=True)
WAIT = Result(requeue_after=RESYNC_SECONDS)
DONE = Result()


class Handler:
    #: The kind of source this handler moves.
    resource: Resource

    def __init__(self, api: Api, pods: Informer) -> None:
        self.api = api
        self.pods = pods

    def pods_using(self, namespace: str, claim: str) -> list[Obj]:
        return state.pods_using(self.pods.list(namespace), claim)

    async def pending(self, t: Transfer) -> Result:
        raise NotImplementedError

    async def running(self, t: Transfer) -> Result:
        raise NotImplementedError

    async def claim_source(self, t: Transfer, obj: Obj, data: dict[str, str]) -> Result:
        """pendingHelper: required annotations, not claimed by another transfer; then mark it ours, save it
        (status stripped) with `data` in status.data and go Running. Each write is safe to repeat."""
        if not state.has_required_annotations(t.ot, obj):
            await t.set(state.MSG_REQUIRED_ANNOTATION)
            return WAIT
        annotations = (obj["metadata"].get("annotations") or {})
        owner = annotations.get(c.ANN_OBJECT_TRANSFER_NAME)
        if owner is not None and owner != t.name:
            await t.set(state.MSG_IN_USE, owner)
            return WAIT
        if owner is None:
            body = copy.deepcopy(obj)
            body["metadata"].setdefault("annotations", {})[c.ANN_OBJECT_TRANSFER_NAME] = t.name
            obj = await self.api.update(self.resource, body)
            await t.set(state.MSG_PENDING)
        saved = {state.DATA_SOURCE: json.dumps(state.without_status(obj), separators=(",", ":")), **data}
        await t.running(saved)
        return NEXT

    async def release_source(self, t: Transfer) -> None:
        """A Pending transfer deleted: take our claim mark off the source (upstream leaves it behind)."""
        resource = self.resource
        obj = await self.api.get(resource, t.source_name, t.source_namespace)
        annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        if obj is None or annotations.get(c.ANN_OBJECT_TRANSFER_NAME) != t.name:
            return
        body = copy.deepcopy(obj)
        del body["metadata"]["annotations"][c.ANN_OBJECT_TRANSFER_NAME]
        await self.api.update(resource, body)
