"""ownerReference garbage collection as kube's garbage collector: background, foreground, orphan."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable
from typing import Any

from ..apiserver import errors
from ..apiserver.resources import ResourceInfo
from ..apiserver.service import WriteContext
from ..apiserver.store import ADDED, DELETED, Event
from .loops import Loop, finalizers_of, meta

log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"

ObjectId = tuple[str, str, str]  # (storage key, namespace, name)
#: What an owner reference says about its owner: solid (alive), dangling (absent), waiting (the owner is
#: being deleted in the foreground) or unknown (its kind is not served: we cannot tell, so it is kept).
SOLID, DANGLING, WAITING, UNKNOWN = "solid", "dangling", "waiting", "unknown"


def owner_refs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    refs = meta(obj).get("ownerReferences")
    return [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []


def _ref_signature(obj: dict[str, Any]) -> tuple[tuple[str, bool], ...]:
    return tuple((str(r.get("uid", "")), bool(r.get("blockOwnerDeletion"))) for r in owner_refs(obj))


class GarbageCollector(Loop):
    """Keeps an owner uid -> dependents index from store events and acts on it.

    Work keys are ("dep", key, ns, name): decide a dependent's fate from its owners' states; and
    ("owner", key, ns, name): process an object being deleted with the `orphan` or `foregroundDeletion`
    finalizer.
    """

    name = "garbage-collector"
    resync_seconds = 300.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._live: dict[str, ObjectId] = {}  # uid -> object
        self._refs: dict[ObjectId, tuple[tuple[str, bool], ...]] = {}  # object -> its owner refs
        self._dependents: dict[str, set[ObjectId]] = {}  # owner uid -> objects naming it
        self._finalizing: set[str] = set()  # uids being deleted behind a GC finalizer

    # ---- the index -------------------------------------------------------------------------------

    def _set_refs(self, oid: ObjectId, refs: tuple[tuple[str, bool], ...]) -> None:
        for uid, _ in self._refs.get(oid, ()):
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(oid)
                if not deps:
                    del self._dependents[uid]
        if refs:
            self._refs[oid] = refs
            for uid, _ in refs:
                self._dependents.setdefault(uid, set()).add(oid)
        else:
            self._refs.pop(oid, None)

    def _observe(self, key: str, obj: dict[str, Any]) -> None:
        m = meta(obj)
        oid = (key, str(m.get("namespace") or ""), str(m.get("name")))
        uid = str(m.get("uid") or "")
        if uid:
            self._live[uid] = oid
        self._set_refs(oid, _ref_signature(obj))
        fins = finalizers_of(obj)
        if uid and m.get("deletionTimestamp") and (ORPHAN in fins or FOREGROUND in fins):
            self._finalizing.add(uid)
        else:
            self._finalizing.discard(uid)

    def _wake_owners(self, refs: Iterable[tuple[str, bool]]) -> None:
        for uid, _ in refs:
            if uid in self._finalizing and uid in self._live:
                self.queue.add(("owner", *self._live[uid]))

    def on_event(self, event: Event) -> None:
        oid = (event.key, event.namespace, event.name)
        uid = str(meta(event.object).get("uid") or "")
        old_refs = self._refs.get(oid, ())
        if event.type == DELETED:
            if self._live.get(uid) == oid:
                del self._live[uid]
            self._finalizing.discard(uid)
            self._set_refs(oid, ())
            for dep in self._dependents.get(uid, ()):
                self.queue.add(("dep", *dep))
            self._wake_owners(old_refs)
            return
        self._observe(event.key, event.object)
        new_refs = self._refs.get(oid, ())
        if uid in self._finalizing:
            self.queue.add(("owner", *oid))
        if new_refs and (event.type == ADDED or new_refs != old_refs):
            # A new dependent may name an owner that never existed (or is going): check it.
            self.queue.add(("dep", *oid))
        if new_refs != old_refs or meta(event.object).get("deletionTimestamp"):
            self._wake_owners(set(old_refs) | set(new_refs))

    def initial_keys(self) -> Iterable[Hashable]:
        # Rebuilt in one synchronous pass, so no event can slip between the scan and the listener.
        self._live.clear()
        self._refs.clear()
        self._dependents.clear()
        self._finalizing.clear()
        keys: list[Hashable] = []
        for info in self.catalog.stored_kinds():
            for obj in self.store.iter_objects(info.storage_key):
                self._observe(info.storage_key, obj)
        for oid in self._refs:
            keys.append(("dep", *oid))
        for uid in self._finalizing:
            keys.append(("owner", *self._live[uid]))
        return keys

    # ---- helpers ---------------------------------------------------------------------------------

    def _info_for_key(self, key: str) -> ResourceInfo | None:
        for info in self.catalog.stored_kinds():
            if info.storage_key == key:
                return info
        return None

    def _resolve(self, api_version: str, kind: str) -> ResourceInfo | None:
        info = self.catalog.by_kind(api_version, kind)
        if info is not None:
            return info
        # Another served version of the same group names the same stored resource.
        group = api_version.rpartition("/")[0]
        for candidate in self.catalog.stored_kinds():
            if candidate.group == group and candidate.kind == kind:
                return candidate
        return None

    def _owner_state(self, ref: dict[str, Any], dep_namespace: str, dep_namespaced: bool) -> str:
        info = self._resolve(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if info is None or not info.stored:
            return UNKNOWN
        if info.namespaced and not dep_namespaced:
            return DANGLING  # a cluster-scoped dependent can only be owned by cluster-scoped objects
        owner_ns = dep_namespace if info.namespaced else ""
        owner = self.store.get(info.storage_key, owner_ns, str(ref.get("name")))
        if owner is None or meta(owner).get("uid") != ref.get("uid"):
            return DANGLING
        if meta(owner).get("deletionTimestamp") and FOREGROUND in finalizers_of(owner):
            return WAITING
        return SOLID

    # ---- reconcile -------------------------------------------------------------------------------

    async def reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple) and len(key) == 4
        kind, skey, ns, name = (str(k) for k in key)
        if kind == "dep":
            await self._attempt_dependent(skey, ns, name)
        else:
            await self._process_owner(skey, ns, name)

    async def _attempt_dependent(self, key: str, ns: str, name: str) -> None:
        info = self._info_for_key(key)
        obj = self.store.get(key, ns, name)
        if info is None or obj is None or meta(obj).get("deletionTimestamp"):
            return
        refs = owner_refs(obj)
        if not refs:
            return
        states = {str(r.get("uid")): self._owner_state(r, ns, info.namespaced) for r in refs}
        gone = {uid for uid, s in states.items() if s in (DANGLING, WAITING)}
        if not gone:
            return
        if any(s in (SOLID, UNKNOWN) for s in states.values()):
            # Still owned by someone alive: only forget the owners that are gone or going.
            await self._strip_refs(info, ns, name, gone)
            return
        uid = str(meta(obj).get("uid"))
        fins = finalizers_of(obj)
        if WAITING in states.values() and self._dependents.get(uid):
            policy = "Foreground"  # propagate the foreground deletion down the ownership tree
        elif ORPHAN in fins:
            policy = "Orphan"
        elif FOREGROUND in fins:
            policy = "Foreground"
        else:
            policy = "Background"
        log.debug("gc: deleting %s %s/%s (%s)", key, ns, name, policy)
        try:
            await self.service.delete(info, ns, name, {"propagationPolicy": policy,
                                                       "preconditions": {"uid": uid}}, WriteContext())
        except errors.APIError as e:
            if e.code not in (404, 409):  # gone already, or replaced by a new object of the same name
                raise

    async def _strip_refs(self, info: ResourceInfo, ns: str, name: str, uids: set[str]) -> None:
        for _ in range(5):
            obj = self.service.find(info, ns, name)
            if obj is None:
                return
            refs = owner_refs(obj)
            kept = [r for r in refs if str(r.get("uid")) not in uids]
            if len(kept) == len(refs):
                return
            if kept:
                obj["metadata"]["ownerReferences"] = kept
            else:
                obj["metadata"].pop("ownerReferences", None)
            try:
                await self.service.update(info, ns, name, obj, WriteContext(), require_rv=True)
                return
            except errors.APIError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
        raise errors.conflict(info.group, info.plural, name)

    async def _process_owner(self, key: str, ns: str, name: str) -> None:
        info = self._info_for_key(key)
        obj = self.store.get(key, ns, name)
        if info is None or obj is None or not meta(obj).get("deletionTimestamp"):
            return
        uid = str(meta(obj).get("uid"))
        fins = finalizers_of(obj)
        if ORPHAN in fins:
            for dep_key, dep_ns, dep_name in sorted(self._dependents.get(uid, ())):
                dep_info = self._info_for_key(dep_key)
                if dep_info is not None:
                    await self._strip_refs(dep_info, dep_ns, dep_name, {uid})
            await self.service.remove_finalizer(info, ns, name, ORPHAN)
            return
        if FOREGROUND not in fins:
            return
        blocked = False
        for dep_key, dep_ns, dep_name in sorted(self._dependents.get(uid, ())):
            await self._attempt_dependent(dep_key, dep_ns, dep_name)
            dep = self.store.get(dep_key, dep_ns, dep_name)
            if dep is None:
                continue
            if any(str(r.get("uid")) == uid and r.get("blockOwnerDeletion") for r in owner_refs(dep)):
                blocked = True  # deleting (maybe behind its own finalizers): its DELETED event wakes us
        if not blocked:
            await self.service.remove_finalizer(info, ns, name, FOREGROUND)
