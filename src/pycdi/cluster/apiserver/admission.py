"""The admission chain: in-process mutating then validating plug-ins that later parts (CDI) register."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .rbac import UserInfo
from .resources import ResourceInfo

CREATE, UPDATE, DELETE, CONNECT = "CREATE", "UPDATE", "DELETE", "CONNECT"


@dataclass
class AdmissionRequest:
    """What a plug-in sees, shaped like an `admission.k8s.io/v1` AdmissionReview request."""

    operation: str
    info: ResourceInfo
    namespace: str
    name: str
    user: UserInfo
    #: The object to be stored; mutating plug-ins change it in place. None for DELETE.
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None = None
    subresource: str = ""
    dry_run: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    #: Warnings for the client (AdmissionResponse.warnings); the server sends them as `Warning` headers.
    warnings: list[str] = field(default_factory=list)


class AdmissionPlugin(Protocol):
    """A plug-in: `mutate` may change `request.object`; `validate` raises an `APIError` to refuse."""

    name: str

    def handles(self, request: AdmissionRequest) -> bool: ...

    async def mutate(self, request: AdmissionRequest) -> None: ...

    async def validate(self, request: AdmissionRequest) -> None: ...


class AdmissionChain:
    """Runs every mutating step of every plug-in, then every validating step, in registration order."""

    def __init__(self) -> None:
        self._plugins: list[AdmissionPlugin] = []

    def register(self, plugin: AdmissionPlugin) -> None:
        self._plugins.append(plugin)

    @property
    def plugin_names(self) -> list[str]:
        return [p.name for p in self._plugins]

    async def mutate(self, request: AdmissionRequest) -> None:
        for plugin in self._plugins:
            if plugin.handles(request):
                await plugin.mutate(request)

    async def validate(self, request: AdmissionRequest) -> None:
        for plugin in self._plugins:
            if plugin.handles(request):
                await plugin.validate(request)
