"""Schemas of CDI's configuration and catalogue types: CDIConfig, StorageProfile, DataSource,
DataImportCron and the CDI operator resource."""

from __future__ import annotations

from pycdi.api.cdi_schemas import data_volume_template
from pycdi.api.constants import (
    PERCENT_PATTERN,
    CloneStrategy,
    UninstallStrategy,
)
from pycdi.api.core_schemas import (
    ACCESS_MODES,
    VOLUME_MODES,
    condition,
    local_object_reference,
    node_placement,
    resource_requirements,
)
from pycdi.api.schema_dsl import (
    Schema,
    arr,
    boolean,
    date_time,
    int32,
    map_of,
    obj,
    str_map,
    string,
)

TLS_VERSIONS = ("VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13")


def _root(spec: Schema, status: Schema, description: str, *, spec_required: bool = True) -> Schema:
    return obj(
        {"apiVersion": string(), "kind": string(), "metadata": obj(), "spec": spec, "status": status},
        ["spec"] if spec_required else [],
        description=description,
    )


def _import_proxy() -> Schema:
    # Upstream's JSON names really are upper-case here.
    return obj({"HTTPProxy": string(), "HTTPSProxy": string(), "noProxy": string(),
                "trustedCAProxy": string()})


def _filesystem_overhead() -> Schema:
    return obj({
        "global": string(pattern=PERCENT_PATTERN),
        "storageClass": map_of(string(pattern=PERCENT_PATTERN)),
    })


def _tls_security_profile() -> Schema:
    custom = obj({"ciphers": arr(string()), "minTLSVersion": string(enum=TLS_VERSIONS)},
                 ["ciphers", "minTLSVersion"], nullable=True)
    return obj({
        "custom": custom,
        "intermediate": obj(nullable=True),
        "modern": obj(nullable=True),
        "old": obj(nullable=True),
        "type": string(enum=["Old", "Intermediate", "Modern", "Custom"]),
    })


def cdi_config_spec() -> Schema:
    return obj({
        "dataVolumeTTLSeconds": int32("Deprecated: garbage collection of completed DataVolumes."),
        "featureGates": arr(string()),
        "filesystemOverhead": _filesystem_overhead(),
        "imagePullSecrets": arr(local_object_reference()),
        "importProxy": _import_proxy(),
        "importRetryLimit": int32("pycdi: failed importer runs before a DataVolume import fails for good "
                                  "(transient errors only; default 5).", minimum=1),
        "insecureRegistries": arr(string()),
        "logVerbosity": int32(),
        "podResourceRequirements": resource_requirements(),
        "preallocation": boolean(),
        "scratchSpaceStorageClass": string(),
        "tlsSecurityProfile": _tls_security_profile(),
        "uploadProxyURLOverride": string(),
        "webhookPvcRendering": string(),
    })


def cdi_config_schema() -> Schema:
    status = obj({
        "defaultPodResourceRequirements": resource_requirements(),
        "filesystemOverhead": _filesystem_overhead(),
        "imagePullSecrets": arr(local_object_reference()),
        "importProxy": _import_proxy(),
        "preallocation": boolean(),
        "scratchSpaceStorageClass": string(),
        "uploadProxyCA": string(),
        "uploadProxyURL": string(),
    })
    return _root(cdi_config_spec(), status, "CDIConfig is the cluster-wide CDI configuration "
                                             "(one object, named config).")


def _claim_property_sets() -> Schema:
    # Upstream checks access modes with a CEL rule; an enum accepts exactly the same values and
    # needs no CEL support in the server.
    item = obj(
        {
            "accessModes": arr(string(enum=ACCESS_MODES), max_items=4),
            "volumeMode": string(enum=VOLUME_MODES),
        },
        ["accessModes", "volumeMode"],
    )
    return arr(item, max_items=8)


def storage_profile_schema() -> Schema:
    common: dict[str, Schema] = {
        "claimPropertySets": _claim_property_sets(),
        "cloneStrategy": string(),
        "dataImportCronSourceFormat": string(),
        "snapshotClass": string(),
    }
    status = obj({**common, "conditions": arr(condition()), "provisioner": string(),
                  "storageClass": string()})
    return _root(obj(common), status, "StorageProfile holds CDI's per-StorageClass defaults "
                                      "(access modes, volume mode, clone strategy).")


def _data_source_source() -> Schema:
    def ref() -> Schema:
        return obj({"name": string(), "namespace": string()}, ["name", "namespace"])

    return obj({"dataSource": ref(), "pvc": ref(), "snapshot": ref()})


def data_source_schema() -> Schema:
    spec = obj({"source": _data_source_source()}, ["source"])
    status = obj({"conditions": arr(condition()), "source": _data_source_source()})
    return _root(spec, status, "DataSource names a golden image (a PVC or VolumeSnapshot) "
                               "that DataVolumes refer to with sourceRef.")


def data_import_cron_schema() -> Schema:
    spec = obj(
        {
            "garbageCollect": string(),
            "importsToKeep": int32(),
            "managedDataSource": string(),
            "retentionPolicy": string(),
            "schedule": string(description="A cron schedule."),
            "serviceAccountName": string(min_length=1),
            "template": data_volume_template(),
        },
        ["managedDataSource", "schedule", "template"],
    )
    status = obj({
        "conditions": arr(condition()),
        "currentImports": arr(obj({"DataVolumeName": string(), "Digest": string()},
                                  ["DataVolumeName", "Digest"])),
        "lastExecutionTimestamp": date_time(),
        "lastImportTimestamp": date_time(),
        "lastImportedPVC": obj({"name": string(), "namespace": string()}, ["name", "namespace"]),
        "sourceFormat": string(),
    })
    return _root(spec, status, "DataImportCron polls a registry and keeps a DataSource up to date.")


def cdi_schema() -> Schema:
    """The CDI operator resource: mostly passed through to the deployment configuration."""
    cert = obj({"duration": string(), "renewBefore": string()})
    patch = obj(
        {"patch": string(), "resourceName": string(min_length=1), "resourceType": string(min_length=1),
         "type": string()},
        ["patch", "resourceName", "resourceType", "type"],
    )
    infra = node_placement()
    infra["properties"].update(
        {"apiServerReplicas": int32(), "deploymentReplicas": int32(), "uploadProxyReplicas": int32()})
    spec = obj({
        "certConfig": obj({"ca": cert, "client": cert, "server": cert}),
        "cloneStrategyOverride": string(enum=[c.value for c in CloneStrategy]),
        "config": cdi_config_spec(),
        "customizeComponents": obj({
            "flags": obj({"api": str_map(), "controller": str_map(), "uploadProxy": str_map()}),
            "patches": arr(patch, list_type="atomic"),
        }),
        "imagePullPolicy": string(enum=["Always", "IfNotPresent", "Never"]),
        "infra": infra,
        "priorityClass": string(),
        "uninstallStrategy": string(enum=[u.value for u in UninstallStrategy]),
        "workload": node_placement(),
    })
    status = obj({
        "conditions": arr(condition()),
        "observedVersion": string(),
        "operatorVersion": string(),
        "phase": string(),
        "targetVersion": string(),
    })
    return _root(spec, status, "CDI is the operator resource that installs and configures CDI.")

