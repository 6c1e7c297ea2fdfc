"""The catalog of served resources: the built-ins plus one entry per served version of every established CRD."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .builtins import BUILTINS
from .resources import ResourceInfo


def infos_from_crd(crd: dict[str, Any]) -> list[ResourceInfo]:
    """The resources a CustomResourceDefinition serves, one per served version (storage version first)."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    versions = sorted(spec.get("versions", []), key=lambda v: (not v.get("storage", False)))
    infos = []
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        infos.append(ResourceInfo(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=frozenset(k for k in ("status", "scale") if k in subresources),
            custom=True,
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
        ))
    return infos


class Catalog:
    """Looks up what a URL names; notifies listeners when CRDs add or remove resources."""

    def __init__(self) -> None:
        self._builtin = {(i.group, i.version, i.plural): i for i in BUILTINS}
        self._custom: dict[str, list[ResourceInfo]] = {}  # CRD name -> its infos
        self._index: dict[tuple[str, str, str], ResourceInfo] = {}
        self._listeners: list[Callable[[], None]] = []
        self.generation = 0
        self._rebuild()

    def _rebuild(self) -> None:
        index = dict(self._builtin)
        for infos in self._custom.values():
            for info in infos:
                index.setdefault((info.group, info.version, info.plural), info)
        self._index = index
        self.generation += 1
        for listener in self._listeners:
            listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def add_builtin(self, info: ResourceInfo) -> None:
        """Serve one more built-in resource (an embedder's virtual create-only resource, rest/virtual.py)."""
        self._builtin[(info.group, info.version, info.plural)] = info
        self._rebuild()

    def set_crd(self, crd: dict[str, Any]) -> None:
        infos = infos_from_crd(crd)
        name = crd["metadata"]["name"]
        if self._custom.get(name) != infos or any(
            a.schema != b.schema or a.printer_columns != b.printer_columns
            for a, b in zip(self._custom.get(name, []), infos, strict=False)
        ):
            self._custom[name] = infos
            self._rebuild()

    def remove_crd(self, name: str) -> None:
        if self._custom.pop(name, None) is not None:
            self._rebuild()

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._index.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        group, _, version = api_version.rpartition("/")
        for info in self._index.values():
            if info.group == group and info.version == version and info.kind == kind:
                return info
        return None

    def storage_version(self, group: str, plural: str) -> ResourceInfo | None:
        """The info a stored object of group/plural is written as (the first served version)."""
        for info in self._index.values():
            if info.group == group and info.plural == plural:
                return self.preferred(group, plural)
        return None

    def preferred(self, group: str, plural: str) -> ResourceInfo | None:
        if not group:
            return self._index.get(("", "v1", plural))
        for infos in self._custom.values():
            if infos and infos[0].group == group and infos[0].plural == plural:
                return infos[0]
        for info in self._builtin.values():
            if info.group == group and info.plural == plural:
                return info
        return None

    def all(self) -> Iterable[ResourceInfo]:
        return tuple(self._index.values())

    def stored_kinds(self) -> list[ResourceInfo]:
        """One info per stored group/resource (its preferred version): what namespace deletion and GC scan."""
        seen: dict[str, ResourceInfo] = {}
        for info in self._index.values():
            if info.stored and info.storage_key not in seen:
                preferred = self.preferred(info.group, info.plural) or info
                seen[info.storage_key] = preferred
        return list(seen.values())
