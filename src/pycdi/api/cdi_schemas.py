"""Schemas of CDI's data-moving types: DataVolume (spec, sources, status) and ObjectTransfer."""

from __future__ import annotations

from pycdi.api.constants import ContentType
from pycdi.api.core_schemas import (
    condition,
    label_selector,
    pvc_spec,
    typed_local_object_reference,
    typed_object_reference,
    volume_resource_requirements,
)
from pycdi.api.schema_dsl import (
    Schema,
    arr,
    boolean,
    embedded_metadata,
    empty_obj,
    int32,
    obj,
    str_map,
    string,
)


def _namespaced_name(description: str) -> Schema:
    return obj({"name": string(), "namespace": string()}, ["name", "namespace"], description=description)


def data_volume_source() -> Schema:
    """DataVolumeSource: exactly one variant is set (enforced by admission, not by the schema)."""
    return obj(
        {
            "blank": empty_obj("Create an empty disk image."),
            "gcs": obj({"secretRef": string(), "url": string()}, ["url"],
                       description="Import from Google Cloud Storage."),
            "http": obj(
                {
                    "certConfigMap": string(),
                    "checksum": string(description="<algorithm>:<hex digest>, e.g. sha256:..."),
                    "extraHeaders": arr(string()),
                    "insecureSkipVerify": boolean(),
                    "secretExtraHeaders": arr(string()),
                    "secretRef": string(),
                    "url": string(),
                },
                ["url"],
                description="Import from an http(s) URL.",
            ),
            "imageio": obj(
                {
                    "certConfigMap": string(),
                    "diskId": string(),
                    "insecureSkipVerify": boolean(),
                    "secretRef": string(),
                    "url": string(),
                },
                ["diskId", "url"],
                description="Import from oVirt ImageIO.",
            ),
            "pvc": _namespaced_name("Clone from a PersistentVolumeClaim."),
            "registry": obj(
                {
                    "certConfigMap": string(),
                    "imageStream": string(),
                    "platform": obj({"architecture": string()}),
                    "pullMethod": string(),
                    "secretRef": string(),
                    "url": string(),
                },
                description="Import the /disk of a container image.",
            ),
            "s3": obj({"certConfigMap": string(), "secretRef": string(), "url": string()}, ["url"],
                      description="Import from an S3 bucket."),
            "snapshot": _namespaced_name("Clone from a VolumeSnapshot."),
            "upload": empty_obj("Wait for an upload through the upload proxy."),
            "vddk": obj(
                {
                    "backingFile": string(),
                    "certConfigMap": string(),
                    "extraArgs": string(),
                    "initImageURL": string(),
                    "secretRef": string(),
                    "thumbprint": string(),
                    "url": string(),
                    "uuid": string(),
                },
                description="Import from VMware through VDDK.",
            ),
        },
        description="The source of the data.",
    )


def storage_spec() -> Schema:
    """StorageSpec: a PVC spec whose missing parts CDI fills from the StorageProfile."""
    return obj(
        {
            "accessModes": arr(string()),
            "dataSource": typed_local_object_reference(),
            "dataSourceRef": typed_object_reference(),
            "resources": volume_resource_requirements(),
            "selector": label_selector(),
            "storageClassName": string(),
            "volumeMode": string(),
            "volumeName": string(),
        },
        description="The target volume; accessModes, volumeMode and size may be left to CDI.",
    )


def data_volume_spec() -> Schema:
    return obj(
        {
            "checkpoints": arr(obj({"current": string(), "previous": string()}, ["current", "previous"])),
            "contentType": string(enum=[c.value for c in ContentType]),
            "finalCheckpoint": boolean(),
            "preallocation": boolean(),
            "priorityClassName": string(),
            "pvc": pvc_spec(),
            "serviceAccountName": string(),
            "source": data_volume_source(),
            "sourceRef": obj({"kind": string(), "name": string(), "namespace": string()}, ["kind", "name"],
                             description="A DataSource to take the source from."),
            "storage": storage_spec(),
        },
        description="The DataVolume's source and target.",
    )


def data_volume_status() -> Schema:
    return obj({
        "claimName": string(),
        "conditions": arr(condition()),
        "phase": string(),
        "progress": string(description="Percentage, or N/A."),
        "restartCount": int32(),
    })


def data_volume_schema() -> Schema:
    return obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "metadata": obj(),
            "spec": data_volume_spec(),
            "status": data_volume_status(),
        },
        ["spec"],
        description="DataVolume imports, clones or uploads a disk image into a PersistentVolumeClaim.",
    )


def data_volume_template() -> Schema:
    """A DataVolume inside another object (DataImportCron `template`, VM `dataVolumeTemplates`)."""
    return obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "metadata": embedded_metadata(),
            "spec": data_volume_spec(),
            "status": data_volume_status(),
        },
        ["spec"],
    )


def object_transfer_schema() -> Schema:
    source = obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "name": string(),
            "namespace": string(),
            "requiredAnnotations": str_map(),
        },
        ["kind", "name", "namespace"],
    )
    target = obj({"name": string(), "namespace": string()})
    spec = obj({"parentName": string(), "source": source, "target": target}, ["source", "target"])
    status = obj({"conditions": arr(condition()), "data": str_map(), "phase": string()})
    return obj(
        {"apiVersion": string(), "kind": string(), "metadata": obj(), "spec": spec, "status": status},
        ["spec"],
        description="ObjectTransfer moves a PersistentVolumeClaim or DataVolume to another namespace "
                    "or name without copying data.",
    )
