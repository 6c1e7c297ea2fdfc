"""Structural schemas of the built-in kinds the embedded API server serves (Kubernetes 1.32 types)."""

from __future__ import annotations

import copy
from collections.abc import Callable

from pycdi.api import review_schemas as reviews
from pycdi.api.core_schemas import (
    label_selector,
    local_object_reference,
    merge_list,
    merge_set,
    object_reference,
    pvc_spec,
    pvc_status,
)
from pycdi.api.meta_schemas import kind_schema
from pycdi.api.pod_schemas import pod_spec
from pycdi.api.schema_dsl import (
    Schema,
    arr,
    boolean,
    date_time,
    int32,
    int64,
    int_or_string,
    map_of,
    obj,
    preserve_unknown,
    str_map,
    string,
)
from pycdi.api.volume_schemas import pv_spec, pv_status


def _conditions(*, meta_v1: bool = False, probe_time: bool = False) -> Schema:
    """A `conditions` list keyed by type: the per-kind condition shapes, or metav1.Condition."""
    props: dict[str, Schema] = {
        "lastTransitionTime": date_time(),
        "message": string(),
        "reason": string(),
        "status": string(),
        "type": string(),
    }
    if meta_v1:
        props["observedGeneration"] = int64()
    if probe_time:
        props["lastProbeTime"] = date_time()
    return merge_list(obj(props, ["type", "status"]), "type")


# ---- core/v1 ------------------------------------------------------------------------------------------


def _namespace() -> Schema:
    return kind_schema("Namespace provides a scope for Names.", {
        "spec": obj({"finalizers": arr(string(), list_type="atomic")}),
        "status": obj({"conditions": _conditions(), "phase": string()}),
    })


def _node() -> Schema:
    taint = obj({"effect": string(), "key": string(), "timeAdded": date_time(), "value": string()},
                ["key", "effect"])
    return kind_schema("Node is a worker node in Kubernetes.", {
        "spec": obj({
            "configSource": preserve_unknown(),
            "externalID": string(),
            "podCIDR": string(),
            "podCIDRs": merge_set(),
            "providerID": string(),
            "taints": arr(taint, list_type="atomic"),
            "unschedulable": boolean(),
        }),
        # Written by the node agent only; kept whole so no reported field is ever lost.
        "status": preserve_unknown("Most recently observed status of the node."),
    })


def _pod() -> Schema:
    return kind_schema("Pod is a collection of containers that can run on a host.", {
        "spec": pod_spec(),
        # Written by the node agent only (container states, IPs, conditions): kept whole.
        "status": preserve_unknown("Most recently observed status of the pod."),
    })


def _pvc() -> Schema:
    status = pvc_status()
    conditions = status["properties"]["conditions"]
    conditions["x-kubernetes-patch-merge-key"] = "type"
    conditions["x-kubernetes-patch-strategy"] = "merge"
    return kind_schema("PersistentVolumeClaim is a user's request for and claim to a persistent volume.", {
        "spec": pvc_spec(), "status": status})


def _pv() -> Schema:
    return kind_schema("PersistentVolume (PV) is a storage resource provisioned by an administrator.", {
        "spec": pv_spec(), "status": pv_status()})


def _config_map() -> Schema:
    return kind_schema("ConfigMap holds configuration data for pods to consume.", {
        "binaryData": map_of(string(fmt="byte")),
        "data": str_map(),
        "immutable": boolean(),
    })


def _secret() -> Schema:
    return kind_schema("Secret holds secret data of a certain type.", {
        "data": map_of(string(fmt="byte"), description="Base64-encoded values."),
        "immutable": boolean(),
        "stringData": str_map("Write-only plain values, merged into data."),
        "type": string(),
    })


def _service_account() -> Schema:
    return kind_schema("ServiceAccount binds together a name, a principal and a set of secrets.", {
        "automountServiceAccountToken": boolean(),
        "imagePullSecrets": arr(local_object_reference(), list_type="atomic"),
        "secrets": merge_list(object_reference(map_type="granular"), "name"),
    })


def _event_series() -> Schema:
    return obj({"count": int32(), "lastObservedTime": date_time()})


def _core_event() -> Schema:
    return kind_schema("Event is a report of an event somewhere in the cluster.", {
        "action": string(),
        "count": int32(),
        "eventTime": date_time(nullable=True),
        "firstTimestamp": date_time(nullable=True),
        "involvedObject": object_reference(map_type="granular"),
        "lastTimestamp": date_time(nullable=True),
        "message": string(),
        "reason": string(),
        "related": object_reference(map_type="granular"),
        "reportingComponent": string(),
        "reportingInstance": string(),
        "series": _event_series(),
        "source": obj({"component": string(), "host": string()}),
        "type": string(),
    }, ("metadata", "involvedObject"))


def _service() -> Schema:
    port = obj({"appProtocol": string(), "name": string(), "nodePort": int32(), "port": int32(),
                "protocol": string(default="TCP"), "targetPort": int_or_string()}, ["port"])
    ingress = obj({"hostname": string(), "ip": string(), "ipMode": string(),
                   "ports": arr(obj({"error": string(), "port": int32(), "protocol": string()},
                                    ["port", "protocol"]), list_type="atomic")})
    return kind_schema("Service is a named abstraction of software service.", {
        "spec": obj({
            "allocateLoadBalancerNodePorts": boolean(),
            "clusterIP": string(),
            "clusterIPs": arr(string(), list_type="atomic"),
            "externalIPs": arr(string(), list_type="atomic"),
            "externalName": string(),
            "externalTrafficPolicy": string(),
            "healthCheckNodePort": int32(),
            "internalTrafficPolicy": string(),
            "ipFamilies": arr(string(), list_type="atomic"),
            "ipFamilyPolicy": string(),
            "loadBalancerClass": string(),
            "loadBalancerIP": string(),
            "loadBalancerSourceRanges": arr(string(), list_type="atomic"),
            "ports": merge_list(port, "port", "port", "protocol"),
            "publishNotReadyAddresses": boolean(),
            "selector": str_map(),
            "sessionAffinity": string(),
            "sessionAffinityConfig": obj({"clientIP": obj({"timeoutSeconds": int32()})}),
            "trafficDistribution": string(),
            "type": string(),
        }),
        "status": obj({"conditions": _conditions(meta_v1=True),
                       "loadBalancer": obj({"ingress": arr(ingress, list_type="atomic")})}),
    })


def _endpoints() -> Schema:
    address = obj({"hostname": string(), "ip": string(), "nodeName": string(),
                   "targetRef": object_reference(map_type="granular")}, ["ip"])
    port = obj({"appProtocol": string(), "name": string(), "port": int32(), "protocol": string()}, ["port"])
    subset = obj({"addresses": arr(address, list_type="atomic"),
                  "notReadyAddresses": arr(address, list_type="atomic"),
                  "ports": arr(port, list_type="atomic")})
    return kind_schema("Endpoints is a collection of endpoints that implement the actual service.", {
        "subsets": arr(subset, list_type="atomic")})


# ---- other groups -------------------------------------------------------------------------------------


def _storage_class() -> Schema:
    requirement = obj({"key": string(), "values": arr(string(), list_type="atomic")}, ["key", "values"])
    term = obj({"matchLabelExpressions": arr(requirement, list_type="atomic")}, map_type="atomic")
    return kind_schema("StorageClass describes the parameters for a class of storage.", {
        "allowVolumeExpansion": boolean(),
        "allowedTopologies": arr(term, list_type="atomic"),
        "mountOptions": arr(string(), list_type="atomic"),
        "parameters": str_map(),
        "provisioner": string(),
        "reclaimPolicy": string(),
        "volumeBindingMode": string(),
    }, ("provisioner",))


def _policy_rule() -> Schema:
    return obj({name: arr(string(), list_type="atomic")
                for name in ("apiGroups", "nonResourceURLs", "resourceNames", "resources", "verbs")}, ["verbs"])


def _role(description: str, *, cluster: bool) -> Schema:
    props: dict[str, Schema] = {"rules": arr(_policy_rule(), list_type="atomic")}
    if cluster:
        props["aggregationRule"] = obj({"clusterRoleSelectors": arr(label_selector(), list_type="atomic")})
    return kind_schema(description, props)


def _binding(description: str) -> Schema:
    subject = obj({"apiGroup": string(), "kind": string(), "name": string(), "namespace": string()},
                  ["kind", "name"], map_type="atomic")
    role_ref = obj({"apiGroup": string(), "kind": string(), "name": string()}, ["apiGroup", "kind", "name"],
                   map_type="atomic")
    return kind_schema(description, {"roleRef": role_ref, "subjects": arr(subject, list_type="atomic")}, ("roleRef",))


def _lease() -> Schema:
    return kind_schema("Lease defines a lease concept.", {"spec": obj({
        "acquireTime": date_time(),
        "holderIdentity": string(),
        "leaseDurationSeconds": int32(),
        "leaseTransitions": int32(),
        "preferredHolder": string(),
        "renewTime": date_time(),
        "strategy": string(),
    })})


def _events_v1_event() -> Schema:
    return kind_schema("Event is a report of an event somewhere in the cluster.", {
        "action": string(),
        "deprecatedCount": int32(),
        "deprecatedFirstTimestamp": date_time(nullable=True),
        "deprecatedLastTimestamp": date_time(nullable=True),
        "deprecatedSource": obj({"component": string(), "host": string()}),
        "eventTime": date_time(nullable=True),
        "note": string(),
        "reason": string(),
        "regarding": object_reference(map_type="granular"),
        "related": object_reference(map_type="granular"),
        "reportingController": string(),
        "reportingInstance": string(),
        "series": _event_series(),
        "type": string(),
    }, ("eventTime",))


def _crd() -> Schema:
    names = obj({"categories": arr(string(), list_type="atomic"), "kind": string(), "listKind": string(),
                 "plural": string(), "shortNames": arr(string(), list_type="atomic"), "singular": string()},
                ["plural", "kind"])
    column = obj({"description": string(), "format": string(), "jsonPath": string(), "name": string(),
                  "priority": int32(), "type": string()}, ["name", "type", "jsonPath"])
    scale = obj({"labelSelectorPath": string(), "specReplicasPath": string(), "statusReplicasPath": string()},
                ["specReplicasPath", "statusReplicasPath"])
    version = obj({
        "additionalPrinterColumns": arr(column, list_type="atomic"),
        "deprecated": boolean(),
        "deprecationWarning": string(),
        "name": string(),
        # The CR schema itself is arbitrary JSON Schema: checked by the CRD validation, never pruned.
        "schema": obj({"openAPIV3Schema": preserve_unknown("The OpenAPI v3 schema of this version.")}),
        "selectableFields": arr(obj({"jsonPath": string()}, ["jsonPath"]), list_type="atomic"),
        "served": boolean(),
        "storage": boolean(),
        "subresources": obj({"scale": scale, "status": preserve_unknown()}),
    }, ["name", "served", "storage"])
    service = obj({"name": string(), "namespace": string(), "path": string(), "port": int32()},
                  ["namespace", "name"])
    client_config = obj({"caBundle": string(fmt="byte"), "service": service, "url": string()})
    conversion = obj({"strategy": string(), "webhook": obj({
        "clientConfig": client_config, "conversionReviewVersions": arr(string(), list_type="atomic")},
        ["conversionReviewVersions"])}, ["strategy"])
    return kind_schema("CustomResourceDefinition represents a resource that should be exposed on the API server.", {
        "spec": obj({"conversion": conversion, "group": string(), "names": names,
                     "preserveUnknownFields": boolean(), "scope": string(),
                     "versions": arr(version, list_type="atomic")}, ["group", "names", "scope", "versions"]),
        "status": obj({"acceptedNames": copy.deepcopy(names), "conditions": _conditions(),
                       "storedVersions": arr(string(), list_type="atomic")}),
    }, ("spec",))


_AUTHZ = "authorization.k8s.io"
_BUILDERS: dict[tuple[str, str, str], Callable[[], Schema]] = {
    ("", "v1", "Namespace"): _namespace,
    ("", "v1", "Node"): _node,
    ("", "v1", "Pod"): _pod,
    ("", "v1", "PersistentVolumeClaim"): _pvc,
    ("", "v1", "PersistentVolume"): _pv,
    ("", "v1", "ConfigMap"): _config_map,
    ("", "v1", "Secret"): _secret,
    ("", "v1", "ServiceAccount"): _service_account,
    ("", "v1", "Event"): _core_event,
    ("", "v1", "Service"): _service,
    ("", "v1", "Endpoints"): _endpoints,
    ("storage.k8s.io", "v1", "StorageClass"): _storage_class,
    ("rbac.authorization.k8s.io", "v1", "Role"): lambda: _role(
        "Role is a namespaced, logical grouping of PolicyRules.", cluster=False),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole"): lambda: _role(
        "ClusterRole is a cluster level, logical grouping of PolicyRules.", cluster=True),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"): lambda: _binding(
        "RoleBinding references a role, but does not contain it."),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"): lambda: _binding(
        "ClusterRoleBinding references a ClusterRole, but does not contain it."),
    ("coordination.k8s.io", "v1", "Lease"): _lease,
    ("events.k8s.io", "v1", "Event"): _events_v1_event,
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"): _crd,
    (_AUTHZ, "v1", "SubjectAccessReview"): lambda: reviews.access_review(
        "SubjectAccessReview checks whether or not a user or group can perform an action.", subject=True),
    (_AUTHZ, "v1", "LocalSubjectAccessReview"): lambda: reviews.access_review(
        "LocalSubjectAccessReview checks whether a user or group can perform an action in a namespace.",
        subject=True),
    (_AUTHZ, "v1", "SelfSubjectAccessReview"): lambda: reviews.access_review(
        "SelfSubjectAccessReview checks whether the current user can perform an action.", subject=False),
    (_AUTHZ, "v1", "SelfSubjectRulesReview"): reviews.rules_review,
    ("authentication.k8s.io", "v1", "TokenReview"): reviews.token_review,
    ("authentication.k8s.io", "v1", "SelfSubjectReview"): reviews.self_subject_review,
    ("authentication.k8s.io", "v1", "TokenRequest"): reviews.token_request,
}

_CACHE: dict[tuple[str, str, str], Schema] = {}


def builtin_kinds() -> list[tuple[str, str, str]]:
    """Every (group, version, kind) that has a schema here."""
    return sorted(_BUILDERS)


def builtin_schema(group: str, version: str, kind: str) -> Schema | None:
    """The structural schema of a built-in kind (a fresh copy), or None if we do not model it.

    The root carries the full ObjectMeta under `metadata` (as kube's OpenAPI does); a CRD would only be
    allowed name/generateName there, so structural checks are made on the rest.
    """
    key = (group, version, kind)
    builder = _BUILDERS.get(key)
    if builder is None:
        return None
    if key not in _CACHE:
        _CACHE[key] = builder()
    return copy.deepcopy(_CACHE[key])
