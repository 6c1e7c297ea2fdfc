"""Schemas of the core/v1 Pod spec: containers, their environment, mounts and security settings."""

from __future__ import annotations

from pycdi.api.core_schemas import (
    affinity,
    label_selector,
    local_object_reference,
    merge_list,
    quantity_map,
    resource_requirements,
    toleration,
)
from pycdi.api.schema_dsl import (
    Schema,
    arr,
    boolean,
    int32,
    int64,
    obj,
    preserve_unknown,
    str_map,
    string,
)
from pycdi.api.volume_schemas import object_field_selector, pod_volume, resource_field_selector


def _key_selector() -> Schema:
    """ConfigMapKeySelector / SecretKeySelector."""
    return obj({"key": string(), "name": string(), "optional": boolean()}, ["key"], map_type="atomic")


def env_var() -> Schema:
    value_from = obj({
        "configMapKeyRef": _key_selector(),
        "fieldRef": object_field_selector(),
        "resourceFieldRef": resource_field_selector(),
        "secretKeyRef": _key_selector(),
    })
    return obj({"name": string(), "value": string(), "valueFrom": value_from}, ["name"])


def env_from() -> Schema:
    source = obj({"name": string(), "optional": boolean()})
    return obj({"configMapRef": source, "prefix": string(), "secretRef": source})


def container_port() -> Schema:
    return obj({"containerPort": int32(), "hostIP": string(), "hostPort": int32(), "name": string(),
                "protocol": string(default="TCP")}, ["containerPort"])


def volume_mount() -> Schema:
    return obj({"mountPath": string(), "mountPropagation": string(), "name": string(), "readOnly": boolean(),
                "recursiveReadOnly": string(), "subPath": string(), "subPathExpr": string()},
               ["name", "mountPath"])


def _profile() -> Schema:
    """SeccompProfile / AppArmorProfile."""
    return obj({"localhostProfile": string(), "type": string()}, ["type"])


def _selinux() -> Schema:
    return obj({"level": string(), "role": string(), "type": string(), "user": string()})


def _windows() -> Schema:
    return obj({"gmsaCredentialSpec": string(), "gmsaCredentialSpecName": string(), "hostProcess": boolean(),
                "runAsUserName": string()})


def security_context() -> Schema:
    """core/v1 SecurityContext (per container)."""
    return obj({
        "allowPrivilegeEscalation": boolean(),
        "appArmorProfile": _profile(),
        "capabilities": obj({"add": arr(string(), list_type="atomic"),
                             "drop": arr(string(), list_type="atomic")}),
        "privileged": boolean(),
        "procMount": string(),
        "readOnlyRootFilesystem": boolean(),
        "runAsGroup": int64(),
        "runAsNonRoot": boolean(),
        "runAsUser": int64(),
        "seLinuxOptions": _selinux(),
        "seccompProfile": _profile(),
        "windowsOptions": _windows(),
    })


def pod_security_context() -> Schema:
    """core/v1 PodSecurityContext."""
    return obj({
        "appArmorProfile": _profile(),
        "fsGroup": int64(),
        "fsGroupChangePolicy": string(),
        "runAsGroup": int64(),
        "runAsNonRoot": boolean(),
        "runAsUser": int64(),
        "seLinuxChangePolicy": string(),
        "seLinuxOptions": _selinux(),
        "seccompProfile": _profile(),
        "supplementalGroups": arr(int64(), list_type="atomic"),
        "supplementalGroupsPolicy": string(),
        "sysctls": arr(obj({"name": string(), "value": string()}, ["name", "value"]), list_type="atomic"),
        "windowsOptions": _windows(),
    })


def container(*, ephemeral: bool = False) -> Schema:
    """core/v1 Container (and EphemeralContainer, which adds `targetContainerName`)."""
    probe = preserve_unknown("Probe (exec, httpGet, tcpSocket, grpc and timings); kept as sent.")
    props: dict[str, Schema] = {
        "args": arr(string(), list_type="atomic"),
        "command": arr(string(), list_type="atomic"),
        "env": merge_list(env_var(), "name"),
        "envFrom": arr(env_from(), list_type="atomic"),
        "image": string(),
        "imagePullPolicy": string(enum=("Always", "IfNotPresent", "Never")),
        "lifecycle": preserve_unknown("Lifecycle hooks (postStart, preStop); kept as sent."),
        "livenessProbe": probe,
        "name": string(),
        "ports": merge_list(container_port(), "containerPort", "containerPort", "protocol"),
        "readinessProbe": probe,
        "resizePolicy": arr(obj({"resourceName": string(), "restartPolicy": string()},
                                ["resourceName", "restartPolicy"]), list_type="atomic"),
        "resources": resource_requirements(),
        "restartPolicy": string(),
        "securityContext": security_context(),
        "startupProbe": probe,
        "stdin": boolean(),
        "stdinOnce": boolean(),
        "terminationMessagePath": string(),
        "terminationMessagePolicy": string(),
        "tty": boolean(),
        "volumeDevices": merge_list(obj({"devicePath": string(), "name": string()}, ["name", "devicePath"]),
                                    "devicePath"),
        "volumeMounts": merge_list(volume_mount(), "mountPath"),
        "workingDir": string(),
    }
    if ephemeral:
        props["targetContainerName"] = string()
    return obj(props, ["name"])


def pod_spec() -> Schema:
    """core/v1 PodSpec, every top-level field; affinity, probes and lifecycle hooks stay opaque."""
    spread = obj({
        "labelSelector": label_selector(),
        "matchLabelKeys": arr(string(), list_type="atomic"),
        "maxSkew": int32(),
        "minDomains": int32(),
        "nodeAffinityPolicy": string(),
        "nodeTaintsPolicy": string(),
        "topologyKey": string(),
        "whenUnsatisfiable": string(),
    }, ["maxSkew", "topologyKey", "whenUnsatisfiable"])
    dns_option = obj({"name": string(), "value": string()})
    return obj({
        "activeDeadlineSeconds": int64(),
        "affinity": affinity(),
        "automountServiceAccountToken": boolean(),
        "containers": merge_list(container(), "name"),
        "dnsConfig": obj({"nameservers": arr(string(), list_type="atomic"),
                          "options": arr(dns_option, list_type="atomic"),
                          "searches": arr(string(), list_type="atomic")}),
        "dnsPolicy": string(),
        "enableServiceLinks": boolean(),
        "ephemeralContainers": merge_list(container(ephemeral=True), "name"),
        "hostAliases": merge_list(obj({"hostnames": arr(string(), list_type="atomic"), "ip": string()},
                                      ["ip"]), "ip"),
        "hostIPC": boolean(),
        "hostNetwork": boolean(),
        "hostPID": boolean(),
        "hostUsers": boolean(),
        "hostname": string(),
        "imagePullSecrets": merge_list(local_object_reference(), "name"),
        "initContainers": merge_list(container(), "name"),
        "nodeName": string(),
        "nodeSelector": str_map(),
        "os": obj({"name": string()}, ["name"]),
        "overhead": quantity_map(),
        "preemptionPolicy": string(),
        "priority": int32(),
        "priorityClassName": string(),
        "readinessGates": arr(obj({"conditionType": string()}, ["conditionType"]), list_type="atomic"),
        "resourceClaims": merge_list(obj({"name": string(), "resourceClaimName": string(),
                                          "resourceClaimTemplateName": string()}, ["name"]),
                                     "name", retain_keys=True),
        "resources": resource_requirements(),
        "restartPolicy": string(enum=("Always", "OnFailure", "Never")),
        "runtimeClassName": string(),
        "schedulerName": string(),
        "schedulingGates": merge_list(obj({"name": string()}, ["name"]), "name"),
        "securityContext": pod_security_context(),
        "serviceAccount": string(),
        "serviceAccountName": string(),
        "setHostnameAsFQDN": boolean(),
        "shareProcessNamespace": boolean(),
        "subdomain": string(),
        "terminationGracePeriodSeconds": int64(),
        "tolerations": arr(toleration(), list_type="atomic"),
        "topologySpreadConstraints": merge_list(spread, "topologyKey", "topologyKey", "whenUnsatisfiable"),
        "volumes": merge_list(pod_volume(), "name", retain_keys=True),
    }, ["containers"])
