"""The CustomResourceDefinitions pycdi installs: CDI, CSI snapshot, KubeVirt VM and HPP types."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycdi.api import groups as g
from pycdi.api.cdi_config_schemas import (
    cdi_config_schema,
    cdi_schema,
    data_import_cron_schema,
    data_source_schema,
    storage_profile_schema,
)
from pycdi.api.cdi_schemas import data_volume_schema, object_transfer_schema
from pycdi.api.clone_schemas import volume_clone_source_schema
from pycdi.api.hpp_schemas import hpp_schema, hpp_v1alpha1_schema
from pycdi.api.kubevirt_schemas import virtual_machine_instance_schema, virtual_machine_schema
from pycdi.api.schema_dsl import Schema
from pycdi.api.snapshot_schemas import (
    volume_snapshot_class_schema,
    volume_snapshot_content_schema,
    volume_snapshot_schema,
)

CRD_API_VERSION = "apiextensions.k8s.io/v1"
AGE_COLUMN: dict[str, Any] = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _col(name: str, type_: str, path: str, description: str = "", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if description:
        column["description"] = description
    if priority:
        column["priority"] = priority
    return column


def _unshared(schema: Schema) -> Schema:
    """A tree copy: builders reuse sub-dicts, and copy.deepcopy would keep them shared (YAML aliases,
    and a mutation in one place showing up in another)."""
    out: Schema = json.loads(json.dumps(schema))
    return out


@dataclass(frozen=True)
class Version:
    """One served version; `schema` builds its openAPIV3Schema."""

    name: str
    schema: Callable[[], Schema]
    storage: bool = False
    deprecation_warning: str | None = None


@dataclass(frozen=True)
class CRD:
    """What differs between our CRDs; `manifest()` renders the apiextensions.k8s.io/v1 object."""

    group: str
    kind: str
    plural: str
    namespaced: bool
    versions: Sequence[Version]
    short_names: Sequence[str] = ()
    categories: Sequence[str] = ()
    #: Only where upstream has it: a status subresource changes how writers must update status.
    status_subresource: bool = False
    printer_columns: Sequence[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"

    def manifest(self) -> dict[str, Any]:
        names: dict[str, Any] = {
            "kind": self.kind,
            "listKind": f"{self.kind}List",
            "plural": self.plural,
            "singular": self.kind.lower(),
        }
        if self.short_names:
            names["shortNames"] = list(self.short_names)
        if self.categories:
            names["categories"] = list(self.categories)
        versions = []
        for v in self.versions:
            version: dict[str, Any] = {
                "name": v.name,
                "served": True,
                "storage": v.storage,
                "schema": {"openAPIV3Schema": _unshared(v.schema())},
            }
            if self.status_subresource:
                version["subresources"] = {"status": {}}
            if self.printer_columns:
                version["additionalPrinterColumns"] = copy.deepcopy(list(self.printer_columns))
            if v.deprecation_warning:
                version["deprecated"] = True
                version["deprecationWarning"] = v.deprecation_warning
            versions.append(version)
        return {
            "apiVersion": CRD_API_VERSION,
            "kind": "CustomResourceDefinition",
            "metadata": {"name": self.name, "labels": {"app.kubernetes.io/part-of": "pycdi"}},
            "spec": {
                "group": self.group,
                "names": names,
                "scope": "Namespaced" if self.namespaced else "Cluster",
                "versions": versions,
            },
        }


def _cdi(kind: str, plural: str, namespaced: bool, schema: Callable[[], Schema], *,
         legacy: bool = False, **kw: Any) -> CRD:
    versions = [Version(g.CDI_VERSION, schema, storage=True)]
    if legacy:
        # v1alpha1 shares objects and schema with v1beta1 (the types did not change shape).
        versions.insert(0, Version(
            g.CDI_LEGACY_VERSION, schema,
            deprecation_warning=f"{g.CDI_GROUP}/{g.CDI_LEGACY_VERSION} {kind} is deprecated; "
                                f"use {g.CDI_API_VERSION}"))
    return CRD(g.CDI_GROUP, kind, plural, namespaced, versions, **kw)


PHASE = _col("Phase", "string", ".status.phase")

CRDS: tuple[CRD, ...] = (
    _cdi(g.DATA_VOLUME, g.DATA_VOLUMES, True, data_volume_schema, legacy=True,
         short_names=("dv", "dvs"), categories=("all",), status_subresource=True,
         printer_columns=[
             _col("Phase", "string", ".status.phase", "The phase the data volume is in"),
             _col("Progress", "string", ".status.progress",
                  "Transfer progress in percentage if known, N/A otherwise"),
             _col("Restarts", "integer", ".status.restartCount",
                  "The number of times the transfer has been restarted."),
             AGE_COLUMN,
         ]),
    _cdi(g.OBJECT_TRANSFER, g.OBJECT_TRANSFERS, False, object_transfer_schema,
         short_names=("ot", "ots"), status_subresource=True,
         printer_columns=[AGE_COLUMN, _col("Phase", "string", ".status.phase",
                                           "The phase of the ObjectTransfer")]),
    _cdi(g.CDI_CONFIG, g.CDI_CONFIGS, False, cdi_config_schema, legacy=True),
    _cdi(g.STORAGE_PROFILE, g.STORAGE_PROFILES, False, storage_profile_schema, status_subresource=True),
    _cdi(g.DATA_SOURCE, g.DATA_SOURCES, True, data_source_schema,
         short_names=("das",), categories=("all",)),
    _cdi(g.DATA_IMPORT_CRON, g.DATA_IMPORT_CRONS, True, data_import_cron_schema,
         short_names=("dic", "dics"), categories=("all",),
         printer_columns=[_col("Format", "string", ".status.sourceFormat",
                               "The format in which created sources are saved")]),
    _cdi(g.CDI, g.CDIS, False, cdi_schema, legacy=True, short_names=("cdi", "cdis"),
         printer_columns=[AGE_COLUMN, PHASE]),
    _cdi(g.VOLUME_CLONE_SOURCE, g.VOLUME_CLONE_SOURCES, True, volume_clone_source_schema),
    CRD(g.SNAPSHOT_GROUP, g.VOLUME_SNAPSHOT, g.VOLUME_SNAPSHOTS, True,
        [Version(g.SNAPSHOT_VERSION, volume_snapshot_schema, storage=True)],
        short_names=("vs",), status_subresource=True,
        printer_columns=[
            _col("ReadyToUse", "boolean", ".status.readyToUse"),
            _col("SourcePVC", "string", ".spec.source.persistentVolumeClaimName"),
            _col("SourceSnapshotContent", "string", ".spec.source.volumeSnapshotContentName"),
            _col("RestoreSize", "string", ".status.restoreSize"),
            _col("SnapshotClass", "string", ".spec.volumeSnapshotClassName"),
            _col("SnapshotContent", "string", ".status.boundVolumeSnapshotContentName"),
            _col("CreationTime", "date", ".status.creationTime"),
            AGE_COLUMN,
        ]),
    CRD(g.SNAPSHOT_GROUP, g.VOLUME_SNAPSHOT_CONTENT, g.VOLUME_SNAPSHOT_CONTENTS, False,
        [Version(g.SNAPSHOT_VERSION, volume_snapshot_content_schema, storage=True)],
        short_names=("vsc", "vscs"), status_subresource=True,
        printer_columns=[
            _col("ReadyToUse", "boolean", ".status.readyToUse"),
            _col("RestoreSize", "integer", ".status.restoreSize"),
            _col("DeletionPolicy", "string", ".spec.deletionPolicy"),
            _col("Driver", "string", ".spec.driver"),
            _col("VolumeSnapshotClass", "string", ".spec.volumeSnapshotClassName"),
            _col("VolumeSnapshot", "string", ".spec.volumeSnapshotRef.name"),
            _col("VolumeSnapshotNamespace", "string", ".spec.volumeSnapshotRef.namespace"),
            AGE_COLUMN,
        ]),
    CRD(g.SNAPSHOT_GROUP, g.VOLUME_SNAPSHOT_CLASS, g.VOLUME_SNAPSHOT_CLASSES, False,
        [Version(g.SNAPSHOT_VERSION, volume_snapshot_class_schema, storage=True)],
        short_names=("vsclass", "vsclasses"),
        printer_columns=[_col("Driver", "string", ".driver"),
                         _col("DeletionPolicy", "string", ".deletionPolicy"), AGE_COLUMN]),
    CRD(g.KUBEVIRT_GROUP, g.VIRTUAL_MACHINE, g.VIRTUAL_MACHINES, True,
        [Version(g.KUBEVIRT_VERSION, virtual_machine_schema, storage=True)],
        short_names=("vm", "vms"), categories=("all",), status_subresource=True,
        printer_columns=[
            AGE_COLUMN,
            _col("Status", "string", ".status.printableStatus", "Human Readable Status"),
            _col("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
        ]),
    CRD(g.KUBEVIRT_GROUP, g.VIRTUAL_MACHINE_INSTANCE, g.VIRTUAL_MACHINE_INSTANCES, True,
        [Version(g.KUBEVIRT_VERSION, virtual_machine_instance_schema, storage=True)],
        short_names=("vmi", "vmis"), categories=("all",),
        printer_columns=[
            AGE_COLUMN,
            PHASE,
            _col("IP", "string", ".status.interfaces[0].ipAddress"),
            _col("NodeName", "string", ".status.nodeName"),
            _col("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
            _col("Live-Migratable", "string", ".status.conditions[?(@.type=='LiveMigratable')].status",
                 priority=1),
            _col("Paused", "string", ".status.conditions[?(@.type=='Paused')].status", priority=1),
        ]),
    CRD(g.HPP_GROUP, g.HOST_PATH_PROVISIONER, g.HOST_PATH_PROVISIONERS, False,
        [Version(g.HPP_LEGACY_VERSION, hpp_v1alpha1_schema,
                 deprecation_warning=f"{g.HPP_GROUP}/{g.HPP_LEGACY_VERSION} is deprecated; "
                                     f"use {g.HPP_API_VERSION}"),
         Version(g.HPP_VERSION, hpp_schema, storage=True)]),
)


def all_crds() -> list[dict[str, Any]]:
    """Full apiextensions.k8s.io/v1 CustomResourceDefinition manifests, in a fixed order.

    Every call builds fresh dicts, so callers may mutate what they get.
    """
    return [crd.manifest() for crd in CRDS]


def crd_by_kind(group: str, kind: str) -> dict[str, Any]:
    """The manifest of one CRD (KeyError when we do not serve that kind)."""
    for crd in CRDS:
        if crd.group == group and crd.kind == kind:
            return crd.manifest()
    raise KeyError(f"{kind}.{group}")


def schema_for(api_version: str, kind: str) -> Schema:
    """The openAPIV3Schema a version serves, e.g. `schema_for("cdi.kubevirt.io/v1alpha1", "DataVolume")`."""
    group, _, version = api_version.partition("/")
    for v in crd_by_kind(group, kind)["spec"]["versions"]:
        if v["name"] == version:
            schema: Schema = v["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{api_version} {kind}")
