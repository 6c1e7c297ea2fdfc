"""Virtual create-only resources an embedder adds (CDI's UploadTokenRequest): answered by its handler, never stored.

They are served like the built-in reviews: discovery lists them with the `create` verb, RBAC authorizes the
create before the handler runs, and the handler's object is the answer. The embedder (`pycdi.cli`) provides
the handler, so the server never imports the code behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..catalog import Catalog
from ..rbac import UserInfo
from ..resources import ResourceInfo

Obj = dict[str, Any]


@dataclass(frozen=True)
class VirtualRequest:
    """One create: the decoded body (apiVersion and kind set to the served ones), its namespace and the user."""

    body: Obj
    namespace: str
    user: UserInfo


#: Returns the object to answer with (201); raises `errors.APIError` to refuse.
VirtualHandler = Callable[[VirtualRequest], Awaitable[Obj]]


class VirtualResources:
    """The registry of virtual resources and their handlers."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._handlers: dict[tuple[str, str, str], VirtualHandler] = {}

    def register(self, group: str, version: str, plural: str, kind: str, handler: VirtualHandler, *,
                 namespaced: bool = True, singular: str = "", short_names: tuple[str, ...] = (),
                 schema: Obj | None = None) -> ResourceInfo:
        """Serve `group/version/plural` (create only) through `handler`; call before the server serves."""
        info = ResourceInfo(group=group, version=version, plural=plural, kind=kind, namespaced=namespaced,
                            singular=singular or kind.lower(), short_names=short_names, verbs=("create",),
                            stored=False, schema=schema)
        self._handlers[(group, version, plural)] = handler
        self._catalog.add_builtin(info)
        return info

    def handler(self, info: ResourceInfo) -> VirtualHandler | None:
        return self._handlers.get((info.group, info.version, info.plural))
