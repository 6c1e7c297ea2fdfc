"""Namespace lifecycle as kube-controller-manager runs it: empty a terminating namespace, then finalize it."""

from __future__ import annotations

import copy
import logging
from collections.abc import Hashable, Iterable
from typing import Any

from ..apiserver import errors
from ..apiserver.service import WriteContext, now_rfc3339
from ..apiserver.store import DELETED, Event
from .loops import NAMESPACES_KEY, Loop, finalizers_of, ignore_gone, meta, namespace_info

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"

#: The condition types the namespace deleter maintains, in kube's order, with their "all good" variants.
CONDITION_TYPES: tuple[str, ...] = (
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
)
OK_REASONS = {
    "NamespaceDeletionDiscoveryFailure": "ResourcesDiscovered",
    "NamespaceDeletionGroupVersionParsingFailure": "ParsedGroupVersions",
    "NamespaceDeletionContentFailure": "ContentDeleted",
    "NamespaceContentRemaining": "ContentRemoved",
    "NamespaceFinalizersRemaining": "ContentRemoved",
}
OK_MESSAGES = {
    "NamespaceDeletionDiscoveryFailure": "All resources successfully discovered",
    "NamespaceDeletionGroupVersionParsingFailure": "All legacy kube types successfully parsed",
    "NamespaceDeletionContentFailure": "All content successfully deleted, may be waiting on finalization",
    "NamespaceContentRemaining": "All content successfully removed",
    "NamespaceFinalizersRemaining": "All content successfully removed",
}


def merge_conditions(current: list[dict[str, Any]],
                     failing: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Every maintained type present: the failing variant where given, else the OK variant (status False).

    The transition time moves only when the status flips, as kube's updateConditions does.
    """
    result = [c for c in current if c.get("type") not in CONDITION_TYPES]
    by_type = {c.get("type"): c for c in current}
    now = now_rfc3339()
    for ctype in CONDITION_TYPES:
        ok = {"status": "False", "reason": OK_REASONS[ctype], "message": OK_MESSAGES[ctype]}
        want = failing.get(ctype) or ok
        old = by_type.get(ctype)
        transition = old.get("lastTransitionTime") if old and old.get("status") == want["status"] else now
        result.append({"type": ctype, "status": want["status"], "lastTransitionTime": transition,
                       "reason": want["reason"], "message": want["message"]})
    return result


class NamespaceLoop(Loop):
    """Deletes the content of namespaces being deleted, then removes the `kubernetes` finalizer."""

    name = "namespace"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Namespaces known to be terminating: events on their content wake their reconcile.
        self._terminating: set[str] = set()

    def on_event(self, event: Event) -> None:
        if event.key == NAMESPACES_KEY:
            if event.type == DELETED:
                self._terminating.discard(event.name)
            elif meta(event.object).get("deletionTimestamp"):
                self._terminating.add(event.name)
                self.queue.add(event.name)
        elif event.namespace and event.namespace in self._terminating:
            self.queue.add(event.namespace)

    def initial_keys(self) -> Iterable[Hashable]:
        for ns in self.store.iter_objects(NAMESPACES_KEY):
            if meta(ns).get("deletionTimestamp"):
                name = str(meta(ns).get("name"))
                self._terminating.add(name)
                yield name

    async def reconcile(self, key: Hashable) -> None:
        name = str(key)
        ns = self.store.get(NAMESPACES_KEY, "", name)
        if ns is None or not meta(ns).get("deletionTimestamp"):
            self._terminating.discard(name)
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        ctx = WriteContext()
        delete_errors: list[str] = []
        remaining: dict[str, int] = {}
        by_finalizer: dict[str, int] = {}
        for info in self.catalog.stored_kinds():
            if not info.namespaced:
                continue
            key_ = info.storage_key
            for obj in list(self.store.iter_objects(key_, name)):
                obj_meta = meta(obj)
                if not obj_meta.get("deletionTimestamp"):
                    try:
                        await self.service.delete(info, name, str(obj_meta.get("name")),
                                                  {"propagationPolicy": "Background"}, ctx)
                    except errors.APIError as e:
                        if not ignore_gone(e):
                            delete_errors.append(e.message)
            left = list(self.store.iter_objects(key_, name))
            if left:
                remaining[f"{info.plural}.{info.group}"] = len(left)
                for obj in left:
                    for finalizer in finalizers_of(obj):
                        by_finalizer[finalizer] = by_finalizer.get(finalizer, 0) + 1
        failing: dict[str, dict[str, str]] = {}
        if delete_errors:
            failing["NamespaceDeletionContentFailure"] = {
                "status": "True", "reason": "ContentDeletionFailed",
                "message": f"Failed to delete all resource types, {len(delete_errors)} remaining: "
                           f"{', '.join(sorted(delete_errors))}"}
        if remaining:
            listed = sorted(f"{gr} has {n} resource instances" for gr, n in remaining.items())
            failing["NamespaceContentRemaining"] = {
                "status": "True", "reason": "SomeResourcesRemain",
                "message": f"Some resources are remaining: {', '.join(listed)}"}
        if by_finalizer:
            listed = sorted(f"{f} in {n} resource instances" for f, n in by_finalizer.items())
            failing["NamespaceFinalizersRemaining"] = {
                "status": "True", "reason": "SomeFinalizersRemain",
                "message": f"Some content in the namespace has finalizers remaining: {', '.join(listed)}"}
        ns = await self._set_conditions(name, failing)
        if ns is None or remaining or delete_errors:
            if delete_errors:
                raise RuntimeError(f"namespace {name}: {len(delete_errors)} deletions failed")
            return  # content still going away: its events (or the resync) bring us back
        await self._finalize(name, ns)

    async def _set_conditions(self, name: str, failing: dict[str, dict[str, str]]) -> dict[str, Any] | None:
        info = namespace_info(self.service)
        ns = self.service.find(info, "", name)
        if ns is None:
            return None
        status = ns.get("status") or {}
        conditions = merge_conditions(list(status.get("conditions") or []), failing)
        if conditions == status.get("conditions"):
            return ns
        updated = copy.deepcopy(ns)
        updated.setdefault("status", {})["conditions"] = conditions
        return await self.service.update(info, "", name, updated, WriteContext(), subresource="status")

    async def _finalize(self, name: str, ns: dict[str, Any]) -> None:
        info = namespace_info(self.service)
        body = copy.deepcopy(ns)
        spec_finalizers = (body.get("spec") or {}).get("finalizers") or []
        body.setdefault("spec", {})["finalizers"] = [f for f in spec_finalizers if f != FINALIZER]
        try:
            await self.service.update(info, "", name, body, WriteContext(), subresource="finalize")
        except errors.APIError as e:
            if e.code != 404:
                raise
        log.debug("namespace %s finalized", name)
