"""Parsing of resource URLs (`/api/v1/namespaces/ns/pods/name/log`) into what they address."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..catalog import Catalog
from ..rbac import UserInfo
from ..resources import ResourceInfo

#: The authenticated (or impersonated) user of a request, set by the authentication middleware.
USER = web.RequestKey("user", UserInfo)


@dataclass(frozen=True)
class Target:
    """The resource, namespace, name and subresource a request addresses."""

    info: ResourceInfo
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    @property
    def is_collection(self) -> bool:
        return not self.name


def parse_target(catalog: Catalog, group: str, version: str, segments: list[str]) -> Target | None:
    """Resolve the segments after `/api/v1` or `/apis/<g>/<v>`; None when nothing is served there."""
    segs = [s for s in segments if s]
    if not segs:
        return None
    namespace = ""
    if segs[0] == "namespaces" and len(segs) >= 3:
        ns_info = catalog.lookup(group, version, "namespaces")
        # /api/v1/namespaces/NAME/status|finalize addresses the namespace itself.
        if not (ns_info is not None and len(segs) == 3 and segs[2] in ns_info.subresources):
            namespace, segs = segs[1], segs[2:]
    info = catalog.lookup(group, version, segs[0])
    if info is None or len(segs) > 3:
        return None
    if namespace and not info.namespaced:
        return None
    name = segs[1] if len(segs) >= 2 else ""
    sub = segs[2] if len(segs) == 3 else ""
    if sub and sub not in info.subresources:
        return None
    return Target(info, namespace, name, sub)
