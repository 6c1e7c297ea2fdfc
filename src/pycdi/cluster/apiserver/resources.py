"""The descriptor of one served resource (built-in or CRD) that every part of the API server shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update",
                              "watch")


@dataclass(frozen=True)
class ResourceInfo:
    """One resource at one group/version, as discovery, routing, storage and printing see it.

    Objects are stored once per group/resource (`storage_key`), whatever version served them;
    versions of one CRD share the same stored objects (no conversion is needed by the types we serve).
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    #: Subresources served: "status", "log", "token", "finalize", "binding", "eviction"...
    subresources: frozenset[str] = frozenset()
    #: True for resources served from a CustomResourceDefinition.
    custom: bool = False
    #: The CRD's `openAPIV3Schema` for this version (None for built-ins without a schema).
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    #: CRD `additionalPrinterColumns` for this version.
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)
    #: Whether the resource keeps its storage in the database (False for virtual resources such as
    #: SubjectAccessReview, which are answered and never stored).
    stored: bool = True
    #: The storage key of another resource whose objects this one serves (events.k8s.io Events are core Events).
    shares_storage_with: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`persistentvolumeclaims` or `datavolumes.cdi.kubevirt.io`: how messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key(self) -> str:
        """The key prefix objects of this resource are stored under, shared by all its versions."""
        return self.shares_storage_with or f"{self.group or 'core'}/{self.plural}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def base_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
