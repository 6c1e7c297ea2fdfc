"""CustomResourceDefinition status and cleanup, as apiextensions-apiserver's naming and finalizer loops."""

from __future__ import annotations

import copy
import logging
from collections.abc import Hashable, Iterable
from typing import Any

from ..apiserver import errors
from ..apiserver.catalog import infos_from_crd
from ..apiserver.resources import ResourceInfo
from ..apiserver.service import WriteContext, now_rfc3339
from ..apiserver.store import DELETED, Event
from .loops import Loop, builtin, finalizers_of, meta

log = logging.getLogger(__name__)

CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def requested_names(crd: dict[str, Any]) -> dict[str, Any]:
    """spec.names with the defaults kube-apiserver fills in (singular, listKind)."""
    names = dict((crd.get("spec") or {}).get("names") or {})
    kind = str(names.get("kind", ""))
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", f"{kind}List")
    return {k: v for k, v in names.items() if v not in (None, [], "")}


def set_condition(conditions: list[dict[str, Any]], ctype: str, status: str, reason: str,
                  message: str) -> None:
    """Set one condition in place; the transition time moves only when the status flips."""
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now_rfc3339()
            cond.update(status=status, reason=reason, message=message)
            return
    conditions.append({"type": ctype, "status": status, "lastTransitionTime": now_rfc3339(), "reason": reason,
                       "message": message})


def condition_true(crd: dict[str, Any], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def storage_version(crd: dict[str, Any]) -> str | None:
    for version in (crd.get("spec") or {}).get("versions") or []:
        if version.get("storage"):
            return str(version.get("name"))
    return None


class CRDLoop(Loop):
    """Accepts names, establishes, stores versions, and empties a CRD being deleted."""

    name = "crd"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._groups: dict[str, str] = {}  # CRD name -> group
        self._terminating: dict[str, str] = {}  # storage key of a terminating CRD's resources -> CRD name

    def on_event(self, event: Event) -> None:
        if event.key == CRD_KEY:
            spec = event.object.get("spec") or {}
            group = str(spec.get("group", ""))
            storage_key = f"{group}/{(spec.get('names') or {}).get('plural', '')}"
            if event.type == DELETED:
                self._groups.pop(event.name, None)
                self._terminating.pop(storage_key, None)
                # Names it held may now be free for another CRD of the group.
                for other, other_group in self._groups.items():
                    if other_group == group:
                        self.queue.add(other)
                return
            self._groups[event.name] = group
            if meta(event.object).get("deletionTimestamp"):
                self._terminating[storage_key] = event.name
            self.queue.add(event.name)
        elif event.type == DELETED and event.key in self._terminating:
            self.queue.add(self._terminating[event.key])

    def initial_keys(self) -> Iterable[Hashable]:
        names = []
        for crd in self.store.iter_objects(CRD_KEY):
            name = str(meta(crd).get("name"))
            spec = crd.get("spec") or {}
            self._groups[name] = str(spec.get("group", ""))
            if meta(crd).get("deletionTimestamp"):
                plural = (spec.get("names") or {}).get("plural", "")
                self._terminating[f"{spec.get('group', '')}/{plural}"] = name
            names.append(name)
        return names

    @property
    def _info(self) -> ResourceInfo:
        return builtin(self.service, "apiextensions.k8s.io", "customresourcedefinitions")

    async def reconcile(self, key: Hashable) -> None:
        name = str(key)
        crd = self.service.find(self._info, "", name)
        if crd is None:
            return
        if meta(crd).get("deletionTimestamp"):
            await self._finalize(crd)
            return
        if CLEANUP_FINALIZER not in finalizers_of(crd):
            crd["metadata"]["finalizers"] = [*finalizers_of(crd), CLEANUP_FINALIZER]
            crd = await self.service.update(self._info, "", name, crd, WriteContext(), require_rv=True)
        await self._update_status(crd)

    # ---- names and establishment -----------------------------------------------------------------

    def _names_taken(self, crd: dict[str, Any]) -> tuple[set[str], set[str]]:
        """Resource names and kinds other CRDs of the same group have been granted."""
        group = (crd.get("spec") or {}).get("group")
        resources: set[str] = set()
        kinds: set[str] = set()
        for other in self.store.iter_objects(CRD_KEY):
            if meta(other).get("name") == meta(crd).get("name"):
                continue
            if (other.get("spec") or {}).get("group") != group:
                continue
            accepted = (other.get("status") or {}).get("acceptedNames") or {}
            resources.update(n for n in (accepted.get("plural"), accepted.get("singular")) if n)
            resources.update(accepted.get("shortNames") or [])
            kinds.update(k for k in (accepted.get("kind"), accepted.get("listKind")) if k)
        return resources, kinds

    def _accept_names(self, crd: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, str, str] | None]:
        """The names this CRD may have and, on a conflict, (status, reason, message) for NamesAccepted."""
        requested = requested_names(crd)
        accepted = dict((crd.get("status") or {}).get("acceptedNames") or {})
        resources, kinds = self._names_taken(crd)
        result = dict(accepted)
        conflict: tuple[str, str, str] | None = None

        def check(field: str, taken: set[str], reason: str) -> None:
            nonlocal conflict
            want = requested.get(field)
            if want and want != accepted.get(field) and want in taken:
                conflict = ("False", reason, f'"{want}" is already in use')
            elif want:
                result[field] = want
            else:
                result.pop(field, None)

        check("plural", resources, "PluralConflict")
        check("singular", resources, "SingularConflict")
        short = [s for s in requested.get("shortNames") or []
                 if s in (accepted.get("shortNames") or []) or s not in resources]
        if len(short) != len(requested.get("shortNames") or []):
            bad = [s for s in requested.get("shortNames") or [] if s not in short]
            conflict = ("False", "ShortNamesConflict", ", ".join(f'"{s}" is already in use' for s in bad))
        elif requested.get("shortNames"):
            result["shortNames"] = requested["shortNames"]
        else:
            result.pop("shortNames", None)
        check("kind", kinds, "KindConflict")
        check("listKind", kinds, "ListKindConflict")
        if requested.get("categories"):
            result["categories"] = requested["categories"]
        else:
            result.pop("categories", None)
        return result, conflict

    async def _update_status(self, crd: dict[str, Any]) -> None:
        status = copy.deepcopy(crd.get("status") or {})
        conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
        names, conflict = self._accept_names(crd)
        status["acceptedNames"] = names
        if conflict is None:
            set_condition(conditions, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
            if not condition_true(crd, "Established"):
                set_condition(conditions, "Established", "True", "InitialNamesAccepted",
                              "the initial names have been accepted")
        else:
            set_condition(conditions, "NamesAccepted", *conflict)
            if not condition_true(crd, "Established"):
                set_condition(conditions, "Established", "False", "NotAccepted", "not all names are accepted")
        status["conditions"] = conditions
        stored = list(status.get("storedVersions") or [])
        version = storage_version(crd)
        if version and version not in stored:
            stored.append(version)
        status["storedVersions"] = stored
        if status != crd.get("status"):
            crd["status"] = status
            await self.service.update(self._info, "", crd["metadata"]["name"], crd, WriteContext(),
                                      subresource="status")

    # ---- deletion --------------------------------------------------------------------------------

    def _resource_info(self, crd: dict[str, Any]) -> ResourceInfo:
        infos = infos_from_crd(crd)
        if infos:
            return infos[0]
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        return ResourceInfo(group=str(spec.get("group")), version=storage_version(crd) or "v1",
                            plural=str(names.get("plural")), kind=str(names.get("kind")),
                            namespaced=spec.get("scope", "Namespaced") == "Namespaced", custom=True)

    async def _set_terminating(self, crd: dict[str, Any], status: str, reason: str,
                               message: str) -> dict[str, Any]:
        updated = copy.deepcopy(crd)
        conditions = list((updated.get("status") or {}).get("conditions") or [])
        set_condition(conditions, "Terminating", status, reason, message)
        updated.setdefault("status", {})["conditions"] = conditions
        if updated == crd:
            return crd
        return await self.service.update(self._info, "", crd["metadata"]["name"], updated, WriteContext(),
                                         subresource="status")

    async def _finalize(self, crd: dict[str, Any]) -> None:
        if CLEANUP_FINALIZER not in finalizers_of(crd):
            return
        name = crd["metadata"]["name"]
        crd = await self._set_terminating(crd, "True", "InstanceDeletionInProgress",
                                          "CustomResource deletion is in progress")
        info = self._resource_info(crd)
        if condition_true(crd, "Established"):
            failures: list[str] = []
            for obj in list(self.store.iter_objects(info.storage_key)):
                if meta(obj).get("deletionTimestamp"):
                    continue
                try:
                    await self.service.delete(info, str(meta(obj).get("namespace") or ""),
                                              str(meta(obj).get("name")), None, WriteContext())
                except errors.APIError as e:
                    if e.code != 404:
                        failures.append(e.message)
            if failures:
                await self._set_terminating(crd, "True", "InstanceDeletionFailed",
                                            f"could not issue all deletes: {', '.join(failures)}")
                raise RuntimeError(f"crd {name}: {len(failures)} deletions failed")
            if self.store.count(info.storage_key):
                return  # instances behind finalizers: their DELETED events bring us back
            await self._set_terminating(crd, "False", "InstanceDeletionCompleted", "removed all instances")
        else:
            await self._set_terminating(crd, "False", "NeverEstablished", "resource was never established")
        await self.service.remove_finalizer(self._info, "", name, CLEANUP_FINALIZER)
