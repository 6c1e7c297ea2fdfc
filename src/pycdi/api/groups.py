"""API group, version and kind names of every custom resource pycdi serves."""

from __future__ import annotations

from typing import Final

CDI_GROUP: Final = "cdi.kubevirt.io"
CDI_VERSION: Final = "v1beta1"
#: The old CDI version: still in upstream docs and older manifests, served from the same objects.
CDI_LEGACY_VERSION: Final = "v1alpha1"
UPLOAD_GROUP: Final = "upload.cdi.kubevirt.io"

SNAPSHOT_GROUP: Final = "snapshot.storage.k8s.io"
SNAPSHOT_VERSION: Final = "v1"

KUBEVIRT_GROUP: Final = "kubevirt.io"
KUBEVIRT_VERSION: Final = "v1"

HPP_GROUP: Final = "hostpathprovisioner.kubevirt.io"
HPP_VERSION: Final = "v1beta1"
#: Upstream served it until operator v0.13; OpenShift 4.x docs still create the CR with it.
HPP_LEGACY_VERSION: Final = "v1alpha1"

# Kinds.
DATA_VOLUME: Final = "DataVolume"
OBJECT_TRANSFER: Final = "ObjectTransfer"
CDI_CONFIG: Final = "CDIConfig"
STORAGE_PROFILE: Final = "StorageProfile"
DATA_SOURCE: Final = "DataSource"
DATA_IMPORT_CRON: Final = "DataImportCron"
CDI: Final = "CDI"
VOLUME_SNAPSHOT: Final = "VolumeSnapshot"
VOLUME_SNAPSHOT_CONTENT: Final = "VolumeSnapshotContent"
VOLUME_SNAPSHOT_CLASS: Final = "VolumeSnapshotClass"
VIRTUAL_MACHINE: Final = "VirtualMachine"
VIRTUAL_MACHINE_INSTANCE: Final = "VirtualMachineInstance"
HOST_PATH_PROVISIONER: Final = "HostPathProvisioner"
VOLUME_CLONE_SOURCE: Final = "VolumeCloneSource"

# apiVersion strings, as objects carry them.
CDI_API_VERSION: Final = f"{CDI_GROUP}/{CDI_VERSION}"
SNAPSHOT_API_VERSION: Final = f"{SNAPSHOT_GROUP}/{SNAPSHOT_VERSION}"
KUBEVIRT_API_VERSION: Final = f"{KUBEVIRT_GROUP}/{KUBEVIRT_VERSION}"
HPP_API_VERSION: Final = f"{HPP_GROUP}/{HPP_VERSION}"

# Plurals (resource names in URLs, RBAC rules and `kubectl get`).
DATA_VOLUMES: Final = "datavolumes"
OBJECT_TRANSFERS: Final = "objecttransfers"
CDI_CONFIGS: Final = "cdiconfigs"
STORAGE_PROFILES: Final = "storageprofiles"
DATA_SOURCES: Final = "datasources"
DATA_IMPORT_CRONS: Final = "dataimportcrons"
CDIS: Final = "cdis"
VOLUME_SNAPSHOTS: Final = "volumesnapshots"
VOLUME_SNAPSHOT_CONTENTS: Final = "volumesnapshotcontents"
VOLUME_SNAPSHOT_CLASSES: Final = "volumesnapshotclasses"
VIRTUAL_MACHINES: Final = "virtualmachines"
VIRTUAL_MACHINE_INSTANCES: Final = "virtualmachineinstances"
HOST_PATH_PROVISIONERS: Final = "hostpathprovisioners"
VOLUME_CLONE_SOURCES: Final = "volumeclonesources"

#: The singleton CDIConfig object's name.
CDI_CONFIG_NAME: Final = "config"
