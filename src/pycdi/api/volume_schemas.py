"""Schemas of core/v1 volume sources: the PersistentVolume spec and the volumes a Pod mounts."""

from __future__ import annotations

from pycdi.api.core_schemas import (
    local_object_reference,
    node_selector,
    object_reference,
    pvc_spec,
    quantity_map,
)
from pycdi.api.schema_dsl import (
    Schema,
    arr,
    boolean,
    date_time,
    int32,
    int64,
    obj,
    preserve_unknown,
    quantity,
    str_map,
    string,
)

# Source types of cloud or legacy storage that nobody writes against this cluster: the type names are
# known (so `spec.nfss` is an unknown field), their bodies are kept as sent.
_OPAQUE_SOURCES = ("awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume",
                   "flocker", "gcePersistentDisk", "glusterfs", "iscsi", "photonPersistentDisk", "portworxVolume",
                   "quobyte", "rbd", "scaleIO", "storageos", "vsphereVolume")


def _opaque(names: tuple[str, ...]) -> dict[str, Schema]:
    return {name: preserve_unknown(f"{name} volume source (kept as sent).") for name in names}


def host_path() -> Schema:
    return obj({"path": string(), "type": string()}, ["path"])


def nfs() -> Schema:
    return obj({"path": string(), "readOnly": boolean(), "server": string()}, ["server", "path"])


def local() -> Schema:
    return obj({"fsType": string(), "path": string()}, ["path"])


def secret_reference() -> Schema:
    """core/v1 SecretReference (a name and a namespace)."""
    return obj({"name": string(), "namespace": string()}, map_type="atomic")


def csi_persistent() -> Schema:
    """core/v1 CSIPersistentVolumeSource."""
    props: dict[str, Schema] = {
        "driver": string(),
        "fsType": string(),
        "readOnly": boolean(),
        "volumeAttributes": str_map(),
        "volumeHandle": string(),
    }
    for ref in ("controllerExpandSecretRef", "controllerPublishSecretRef", "nodeExpandSecretRef",
                "nodePublishSecretRef", "nodeStageSecretRef"):
        props[ref] = secret_reference()
    return obj(props, ["driver", "volumeHandle"])


def pv_spec() -> Schema:
    """core/v1 PersistentVolumeSpec: every source type by name, the common ones field by field."""
    props: dict[str, Schema] = {
        "accessModes": arr(string(), list_type="atomic"),
        "capacity": quantity_map(),
        "claimRef": object_reference(map_type="granular"),
        "csi": csi_persistent(),
        "hostPath": host_path(),
        "local": local(),
        "mountOptions": arr(string(), list_type="atomic"),
        "nfs": nfs(),
        "nodeAffinity": obj({"required": node_selector()}),
        "persistentVolumeReclaimPolicy": string(),
        "storageClassName": string(),
        "volumeAttributesClassName": string(),
        "volumeMode": string(),
    }
    props.update(_opaque(_OPAQUE_SOURCES))
    return obj(props)


def pv_status() -> Schema:
    return obj({"lastPhaseTransitionTime": date_time(), "message": string(), "phase": string(),
                "reason": string()})


def key_to_path() -> Schema:
    return obj({"key": string(), "mode": int32(), "path": string()}, ["key", "path"])


def object_field_selector() -> Schema:
    return obj({"apiVersion": string(), "fieldPath": string()}, ["fieldPath"], map_type="atomic")


def resource_field_selector() -> Schema:
    return obj({"containerName": string(), "divisor": quantity(), "resource": string()}, ["resource"],
               map_type="atomic")


def _downward_file() -> Schema:
    return obj({"fieldRef": object_field_selector(), "mode": int32(), "path": string(),
                "resourceFieldRef": resource_field_selector()}, ["path"])


def _projection() -> Schema:
    """core/v1 VolumeProjection: the projected sources by name; bodies as for the plain volume types."""
    items = arr(key_to_path(), list_type="atomic")
    return obj({
        "clusterTrustBundle": preserve_unknown(),
        "configMap": obj({"items": items, "name": string(), "optional": boolean()}),
        "downwardAPI": obj({"items": arr(_downward_file(), list_type="atomic")}),
        "secret": obj({"items": items, "name": string(), "optional": boolean()}),
        "serviceAccountToken": obj({"audience": string(), "expirationSeconds": int64(), "path": string()},
                                   ["path"]),
    })


def pvc_template() -> Schema:
    """core/v1 PersistentVolumeClaimTemplate (generic ephemeral volumes)."""
    meta = preserve_unknown("May contain labels and annotations copied onto the claim.")
    return obj({"metadata": meta, "spec": pvc_spec()}, ["spec"])


def pod_volume() -> Schema:
    """core/v1 Volume: a name plus exactly one source type."""
    items = arr(key_to_path(), list_type="atomic")
    props: dict[str, Schema] = {
        "name": string(),
        "configMap": obj({"defaultMode": int32(), "items": items, "name": string(), "optional": boolean()}),
        "csi": obj({"driver": string(), "fsType": string(), "nodePublishSecretRef": local_object_reference(),
                    "readOnly": boolean(), "volumeAttributes": str_map()}, ["driver"]),
        "downwardAPI": obj({"defaultMode": int32(), "items": arr(_downward_file(), list_type="atomic")}),
        "emptyDir": obj({"medium": string(), "sizeLimit": quantity()}),
        "ephemeral": obj({"volumeClaimTemplate": pvc_template()}),
        "hostPath": host_path(),
        "image": obj({"pullPolicy": string(), "reference": string()}),
        "nfs": nfs(),
        "persistentVolumeClaim": obj({"claimName": string(), "readOnly": boolean()}, ["claimName"]),
        "projected": obj({"defaultMode": int32(), "sources": arr(_projection(), list_type="atomic")}),
        "secret": obj({"defaultMode": int32(), "items": items, "optional": boolean(), "secretName": string()}),
    }
    props.update(_opaque((*_OPAQUE_SOURCES, "gitRepo")))
    return obj(props, ["name"])
