"""Schemas of the core/v1 and meta/v1 pieces that CRDs embed (PVC spec, selectors, references...)."""

from __future__ import annotations

from pycdi.api.schema_dsl import (
    Schema,
    arr,
    date_time,
    int64,
    map_of,
    obj,
    preserve_unknown,
    quantity,
    str_map,
    string,
)

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
VOLUME_MODES = ("Block", "Filesystem")


def quantity_map(description: str | None = None) -> Schema:
    """A ResourceList: resource name -> Quantity."""
    return map_of(quantity(), description=description)


def local_object_reference() -> Schema:
    return obj({"name": string(default="")}, map_type="atomic")


def label_selector() -> Schema:
    """metav1.LabelSelector."""
    requirement = obj(
        {"key": string(), "operator": string(), "values": arr(string(), list_type="atomic")},
        ["key", "operator"],
    )
    return obj(
        {"matchExpressions": arr(requirement, list_type="atomic"), "matchLabels": str_map()},
        map_type="atomic",
    )


def typed_local_object_reference() -> Schema:
    """core/v1 TypedLocalObjectReference (a PVC's `dataSource`)."""
    return obj({"apiGroup": string(), "kind": string(), "name": string()}, ["kind", "name"],
               map_type="atomic")


def typed_object_reference() -> Schema:
    """core/v1 TypedObjectReference (a PVC's `dataSourceRef`, which may name another namespace)."""
    return obj({"apiGroup": string(), "kind": string(), "name": string(), "namespace": string()},
               ["kind", "name"])


def object_reference(*, map_type: str | None = "atomic") -> Schema:
    """core/v1 ObjectReference."""
    return obj(
        {
            "apiVersion": string(),
            "fieldPath": string(),
            "kind": string(),
            "name": string(),
            "namespace": string(),
            "resourceVersion": string(),
            "uid": string(),
        },
        map_type=map_type,
    )


def volume_resource_requirements() -> Schema:
    """core/v1 VolumeResourceRequirements (PVC `resources`: no `claims`)."""
    return obj({"limits": quantity_map(), "requests": quantity_map()})


def resource_requirements() -> Schema:
    """core/v1 ResourceRequirements (containers: with dynamic resource `claims`)."""
    claim = obj({"name": string(), "request": string()}, ["name"])
    return obj({
        "claims": arr(claim, list_type="map", map_keys=["name"]),
        "limits": quantity_map(),
        "requests": quantity_map(),
    })


def pvc_spec() -> Schema:
    """core/v1 PersistentVolumeClaimSpec, as DataVolume `pvc` and HPP `pvcTemplate` carry it."""
    return obj({
        "accessModes": arr(string(), list_type="atomic"),
        "dataSource": typed_local_object_reference(),
        "dataSourceRef": typed_object_reference(),
        "resources": volume_resource_requirements(),
        "selector": label_selector(),
        "storageClassName": string(),
        "volumeAttributesClassName": string(),
        "volumeMode": string(),
        "volumeName": string(),
    })


def _granular(node: Schema) -> Schema:
    node["x-kubernetes-map-type"] = "granular"
    return node


def pvc_status() -> Schema:
    """core/v1 PersistentVolumeClaimStatus (HPP reports it per storage pool claim)."""
    condition = obj(
        {
            "lastProbeTime": date_time(),
            "lastTransitionTime": date_time(),
            "message": string(),
            "reason": string(),
            "status": string(),
            "type": string(),
        },
        ["status", "type"],
    )
    return obj({
        "accessModes": arr(string(), list_type="atomic"),
        "allocatedResourceStatuses": _granular(map_of(string())),
        "allocatedResources": quantity_map(),
        "capacity": quantity_map(),
        "conditions": arr(condition, list_type="map", map_keys=["type"]),
        "currentVolumeAttributesClassName": string(),
        "modifyVolumeStatus": obj({"status": string(), "targetVolumeAttributesClassName": string()},
                                  ["status"]),
        "phase": string(),
    })


def condition(*, probe_time: bool = False) -> Schema:
    """The condition shape CDI, HPP (openshift custom-resource-status) and KubeVirt share.

    CDI and HPP carry `lastHeartbeatTime`; KubeVirt carries `lastProbeTime` instead.
    """
    props: dict[str, Schema] = {
        "lastTransitionTime": date_time(nullable=probe_time),
        "message": string(),
        "reason": string(),
        "status": string(),
        "type": string(),
    }
    props["lastProbeTime" if probe_time else "lastHeartbeatTime"] = date_time(nullable=probe_time)
    return obj(props, ["status", "type"])


def toleration() -> Schema:
    return obj({
        "effect": string(),
        "key": string(),
        "operator": string(),
        "tolerationSeconds": int64(),
        "value": string(),
    })


def affinity() -> Schema:
    """core/v1 Affinity: node/pod (anti-)affinity trees are deep and only passed through to pods."""
    return obj({
        "nodeAffinity": preserve_unknown(),
        "podAffinity": preserve_unknown(),
        "podAntiAffinity": preserve_unknown(),
    })


def node_placement() -> Schema:
    """The sdk NodePlacement (CDI `infra`/`workload`, HPP `workload`)."""
    return obj({
        "affinity": affinity(),
        "nodeSelector": str_map(),
        "tolerations": arr(toleration()),
    })


def merge_list(items: Schema, key: str, *map_keys: str, retain_keys: bool = False,
               description: str | None = None) -> Schema:
    """A list merged by `key` in strategic merge patch (the k8s.io/api patchMergeKey/listMapKey tags).

    The `x-kubernetes-patch-*` extensions are what kubectl's client-side apply reads from the
    published OpenAPI to build its patch; `map_keys` defaults to the merge key alone.
    """
    node = arr(items, list_type="map", map_keys=list(map_keys or (key,)), description=description)
    node["x-kubernetes-patch-merge-key"] = key
    node["x-kubernetes-patch-strategy"] = "merge,retainKeys" if retain_keys else "merge"
    return node


def merge_set(items: Schema | None = None, *, description: str | None = None) -> Schema:
    """A list of scalars merged as a set (patchStrategy merge without a key: finalizers, podCIDRs)."""
    node = arr(items or string(), list_type="set", description=description)
    node["x-kubernetes-patch-strategy"] = "merge"
    return node


def node_selector() -> Schema:
    """core/v1 NodeSelector (a PV's `nodeAffinity.required`): terms ORed, requirements ANDed."""
    requirement = obj({"key": string(), "operator": string(), "values": arr(string(), list_type="atomic")},
                      ["key", "operator"])
    term = obj({"matchExpressions": arr(requirement, list_type="atomic"),
                "matchFields": arr(requirement, list_type="atomic")}, map_type="atomic")
    return obj({"nodeSelectorTerms": arr(term, list_type="atomic")}, ["nodeSelectorTerms"],
               map_type="atomic")
