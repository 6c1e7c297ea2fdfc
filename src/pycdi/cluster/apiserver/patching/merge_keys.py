"""List merge strategies of the built-in kinds we serve (k8s.io/api patchStrategy/listMapKey tags)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Path = tuple[str, ...]


@dataclass(frozen=True)
class ListStrategy:
    """How a list field merges: `merge_key` None means a list of primitives merged as a set.

    `retain_keys` mirrors `patchStrategy:"merge,retainKeys"` (kubectl then sends `$retainKeys`).
    `map_keys` are the server-side-apply `+listMapKey`s, which can be more than the one
    strategic-merge key (container ports are keyed by containerPort *and* protocol).
    """

    merge_key: str | None
    retain_keys: bool = False
    map_keys: tuple[str, ...] = ()


def _keyed(key: str, *extra: str, retain: bool = False) -> ListStrategy:
    return ListStrategy(key, retain, (key, *extra))


_SET = ListStrategy(None)

# ObjectMeta (k8s.io/apimachinery meta/v1 types.go): finalizers merge as a set, owner
# references by uid. Every kind has these.
_META: dict[Path, ListStrategy] = {
    ("metadata", "finalizers"): _SET,
    ("metadata", "ownerReferences"): _keyed("uid"),
}

# Container / EphemeralContainerCommon.
_CONTAINER: dict[Path, ListStrategy] = {
    ("ports",): _keyed("containerPort", "protocol"),
    ("env",): _keyed("name"),
    ("volumeMounts",): _keyed("mountPath"),
    ("volumeDevices",): _keyed("devicePath"),
}

_CONTAINER_STATUS: dict[Path, ListStrategy] = {
    ("volumeMounts",): _keyed("mountPath"),
    ("allocatedResourcesStatus",): _keyed("name"),
}


def _nest(prefix: Path, table: dict[Path, ListStrategy]) -> dict[Path, ListStrategy]:
    return {prefix + path: strategy for path, strategy in table.items()}


def _pod() -> dict[Path, ListStrategy]:
    table: dict[Path, ListStrategy] = {
        ("spec", "volumes"): _keyed("name", retain=True),
        ("spec", "imagePullSecrets"): _keyed("name"),
        ("spec", "hostAliases"): _keyed("ip"),
        ("spec", "topologySpreadConstraints"): _keyed("topologyKey", "whenUnsatisfiable"),
        ("spec", "schedulingGates"): _keyed("name"),
        ("spec", "resourceClaims"): _keyed("name", retain=True),
        ("status", "conditions"): _keyed("type"),
        ("status", "hostIPs"): _keyed("ip"),
        ("status", "podIPs"): _keyed("ip"),
        ("status", "resourceClaimStatuses"): _keyed("name", retain=True),
    }
    for field in ("containers", "initContainers", "ephemeralContainers"):
        table[("spec", field)] = _keyed("name")
        table.update(_nest(("spec", field), _CONTAINER))
    for field in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        table.update(_nest(("status", field), _CONTAINER_STATUS))
    return table


_CONDITIONS: dict[Path, ListStrategy] = {("status", "conditions"): _keyed("type")}

_BY_KIND: dict[str, dict[Path, ListStrategy]] = {
    "Pod": _pod(),
    "PersistentVolumeClaim": dict(_CONDITIONS),
    "Namespace": dict(_CONDITIONS),
    "Node": {
        ("spec", "podCIDRs"): _SET,
        ("status", "conditions"): _keyed("type"),
        ("status", "addresses"): _keyed("type"),
    },
    "Service": {
        ("spec", "ports"): _keyed("port", "protocol"),
        ("status", "conditions"): _keyed("type"),
    },
    "ServiceAccount": {("secrets",): _keyed("name")},
}

# Kinds whose strategic merge patch we accept; everything else (custom resources) is 415.
BUILTIN_KINDS = frozenset({
    "Pod", "PersistentVolumeClaim", "PersistentVolume", "Namespace", "Node", "ConfigMap", "Secret",
    "ServiceAccount", "Service", "Endpoints", "Event", "StorageClass", "Role", "ClusterRole",
    "RoleBinding", "ClusterRoleBinding", "Lease", "CustomResourceDefinition",
})


def list_strategy(kind: str, path: Path) -> ListStrategy | None:
    """The merge strategy of the list at `path` (field names, list positions skipped), if any.

    None means the list has no merge strategy: a patch replaces it wholesale.
    """
    found = _META.get(path)
    if found is not None:
        return found
    return _BY_KIND.get(kind, {}).get(path)


def builtin_list_map_keys(kind: str) -> Callable[[Path], list[str] | None]:
    """A `list_map_keys` callback for server-side apply on a built-in kind.

    Returns the map keys of an associative list, [] for a set of primitives, None if atomic.
    """
    def keys(path: Path) -> list[str] | None:
        strategy = list_strategy(kind, path)
        if strategy is None:
            return None
        return list(strategy.map_keys)
    return keys
