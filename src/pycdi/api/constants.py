"""CDI phases, enums, condition types/reasons and annotation keys, with upstream's exact spellings."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class DataVolumePhase(StrEnum):
    """`DataVolume.status.phase` (upstream `DataVolumePhase`)."""

    UNSET = ""
    PENDING = "Pending"
    PVC_BOUND = "PVCBound"
    IMPORT_SCHEDULED = "ImportScheduled"
    IMPORT_IN_PROGRESS = "ImportInProgress"
    CLONE_SCHEDULED = "CloneScheduled"
    CLONE_IN_PROGRESS = "CloneInProgress"
    SNAPSHOT_FOR_SMART_CLONE_IN_PROGRESS = "SnapshotForSmartCloneInProgress"
    CLONE_FROM_SNAPSHOT_SOURCE_IN_PROGRESS = "CloneFromSnapshotSourceInProgress"
    SMART_CLONE_PVC_IN_PROGRESS = "SmartClonePVCInProgress"
    CSI_CLONE_IN_PROGRESS = "CSICloneInProgress"
    EXPANSION_IN_PROGRESS = "ExpansionInProgress"
    NAMESPACE_TRANSFER_IN_PROGRESS = "NamespaceTransferInProgress"
    UPLOAD_SCHEDULED = "UploadScheduled"
    UPLOAD_READY = "UploadReady"
    WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
    PENDING_POPULATION = "PendingPopulation"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"
    PAUSED = "Paused"
    PREP_CLAIM_IN_PROGRESS = "PrepClaimInProgress"
    REBIND_IN_PROGRESS = "RebindInProgress"


class DataVolumeConditionType(StrEnum):
    READY = "Ready"
    BOUND = "Bound"
    RUNNING = "Running"


class ContentType(StrEnum):
    KUBEVIRT = "kubevirt"
    ARCHIVE = "archive"


class RegistryPullMethod(StrEnum):
    POD = "pod"
    NODE = "node"


class CloneStrategy(StrEnum):
    """`CDICloneStrategy`: StorageProfile `cloneStrategy`, CDI `cloneStrategyOverride`."""

    COPY = "copy"
    SNAPSHOT = "snapshot"
    CSI_CLONE = "csi-clone"


class ObjectTransferPhase(StrEnum):
    UNSET = ""
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETE = "Complete"
    ERROR = "Error"


#: ObjectTransfer's single condition type.
OBJECT_TRANSFER_COMPLETE: Final = "Complete"
#: ObjectTransfer source kinds the webhook accepts.
OBJECT_TRANSFER_SOURCE_KINDS: Final = ("DataVolume", "PersistentVolumeClaim")

STORAGE_PROFILE_RECOGNIZED: Final = "Recognized"
DATA_SOURCE_READY: Final = "Ready"


class DataImportCronConditionType(StrEnum):
    PROGRESSING = "Progressing"
    UP_TO_DATE = "UpToDate"


class DataImportCronGarbageCollect(StrEnum):
    NEVER = "Never"
    OUTDATED = "Outdated"


class DataImportCronRetentionPolicy(StrEnum):
    NONE = "None"
    ALL = "All"


class DataImportCronSourceFormat(StrEnum):
    SNAPSHOT = "snapshot"
    PVC = "pvc"


class WebhookPvcRendering(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class UninstallStrategy(StrEnum):
    REMOVE_WORKLOADS = "RemoveWorkloads"
    BLOCK_UNINSTALL_IF_WORKLOADS_EXIST = "BlockUninstallIfWorkloadsExist"


class FeatureGate(StrEnum):
    """CDIConfig `spec.featureGates` entries (`pkg/feature-gates`)."""

    HONOR_WAIT_FOR_FIRST_CONSUMER = "HonorWaitForFirstConsumer"
    DATA_VOLUME_CLAIM_ADOPTION = "DataVolumeClaimAdoption"
    WEBHOOK_PVC_RENDERING = "WebhookPvcRendering"
    BOOTC_IMAGE_IMPORT = "BootcImageImport"


#: Default filesystem overhead (`DefaultGlobalOverhead`; 0.055 before upstream PR #3812).
DEFAULT_FS_OVERHEAD: Final = "0.06"
#: CDIConfig `filesystemOverhead` values: a fraction with at most three decimals, 0..1.
PERCENT_PATTERN: Final = r"^(0(?:\.\d{1,3})?|1)$"

# Bound condition reasons and messages (`pkg/controller/datavolume/conditions.go`).
REASON_BOUND: Final = "Bound"
REASON_PENDING: Final = "Pending"
REASON_CLAIM_LOST: Final = "ClaimLost"
REASON_NOT_FOUND: Final = "NotFound"
REASON_TRANSFER_RUNNING: Final = "TransferRunning"
REASON_IMAGE_PULL_FAILED: Final = "ImagePullFailed"
REASON_UNSCHEDULABLE: Final = "Unschedulable"
REASON_CHECKSUM_ERROR: Final = "ChecksumError"
REASON_SCRATCH_REQUIRED: Final = "Scratch space required"
REASON_POD_RUNNING: Final = "Pod is running"
REASON_CREATING_SCRATCH: Final = "CreatingScratchSpace"
# Event reasons used with these objects.
EVENT_ERR_CLAIM_NOT_VALID: Final = "ErrClaimNotValid"
EVENT_ERR_CLAIM_LOST: Final = "ErrClaimLost"
EVENT_ERR_EXCEEDED_QUOTA: Final = "ErrExceededQuota"
EVENT_CLONE_SOURCE_IN_USE: Final = "CloneSourceInUse"
EVENT_CLONE_VALIDATION_FAILED: Final = "CloneValidationFailed"

# Annotation keys (`pkg/controller/common/util.go`).
ANN_PREFIX: Final = "cdi.kubevirt.io"
ANN_CREATED_BY: Final = "cdi.kubevirt.io/storage.createdByController"
ANN_POD_PHASE: Final = "cdi.kubevirt.io/storage.pod.phase"
ANN_POD_READY: Final = "cdi.kubevirt.io/storage.pod.ready"
ANN_POD_RESTARTS: Final = "cdi.kubevirt.io/storage.pod.restarts"
ANN_POD_SCHEDULABLE: Final = "cdi.kubevirt.io/storage.pod.schedulable"
ANN_POD_RETAIN_AFTER_COMPLETION: Final = "cdi.kubevirt.io/storage.pod.retainAfterCompletion"
ANN_POD_PRIORITY_CLASS_NAME: Final = "cdi.kubevirt.io/storage.pod.priorityclassname"
ANN_POD_SERVICE_ACCOUNT: Final = "cdi.kubevirt.io/storage.pod.serviceAccountName"
ANN_IMPORT_FATAL_ERROR: Final = "cdi.kubevirt.io/storage.import.fatalError"
ANN_POPULATED_FOR: Final = "cdi.kubevirt.io/storage.populatedFor"
ANN_PRE_POPULATED: Final = "cdi.kubevirt.io/storage.prePopulated"
ANN_CHECK_STATIC_VOLUME: Final = "cdi.kubevirt.io/storage.checkStaticVolume"
ANN_ALLOW_CLAIM_ADOPTION: Final = "cdi.kubevirt.io/allowClaimAdoption"
ANN_POPULATOR_PROGRESS: Final = "cdi.kubevirt.io/storage.populator.progress"
ANN_POPULATOR_KIND: Final = "cdi.kubevirt.io/storage.populator.kind"
ANN_PVC_PRIME_NAME: Final = "cdi.kubevirt.io/storage.populator.pvcPrime"
ANN_USE_POPULATOR: Final = "cdi.kubevirt.io/storage.usePopulator"
ANN_PREALLOCATION_REQUESTED: Final = "cdi.kubevirt.io/storage.preallocation.requested"
ANN_PREALLOCATION_APPLIED: Final = "cdi.kubevirt.io/storage.preallocation"
ANN_RUNNING_CONDITION: Final = "cdi.kubevirt.io/storage.condition.running"
ANN_RUNNING_CONDITION_MESSAGE: Final = "cdi.kubevirt.io/storage.condition.running.message"
ANN_RUNNING_CONDITION_REASON: Final = "cdi.kubevirt.io/storage.condition.running.reason"
ANN_BOUND_CONDITION: Final = "cdi.kubevirt.io/storage.condition.bound"
ANN_BOUND_CONDITION_MESSAGE: Final = "cdi.kubevirt.io/storage.condition.bound.message"
ANN_BOUND_CONDITION_REASON: Final = "cdi.kubevirt.io/storage.condition.bound.reason"
ANN_SOURCE_RUNNING_CONDITION: Final = "cdi.kubevirt.io/storage.condition.source.running"
ANN_SOURCE_RUNNING_CONDITION_MESSAGE: Final = "cdi.kubevirt.io/storage.condition.source.running.message"
ANN_SOURCE_RUNNING_CONDITION_REASON: Final = "cdi.kubevirt.io/storage.condition.source.running.reason"
ANN_REQUIRES_SCRATCH: Final = "cdi.kubevirt.io/storage.import.requiresScratch"
ANN_REQUIRES_DIRECT_IO: Final = "cdi.kubevirt.io/storage.import.requiresDirectIo"
ANN_CONTENT_TYPE: Final = "cdi.kubevirt.io/storage.contentType"
ANN_SOURCE: Final = "cdi.kubevirt.io/storage.import.source"
ANN_ENDPOINT: Final = "cdi.kubevirt.io/storage.import.endpoint"
ANN_SECRET: Final = "cdi.kubevirt.io/storage.import.secretName"
ANN_CERT_CONFIG_MAP: Final = "cdi.kubevirt.io/storage.import.certConfigMap"
ANN_REGISTRY_IMPORT_METHOD: Final = "cdi.kubevirt.io/storage.import.registryImportMethod"
ANN_REGISTRY_IMAGE_STREAM: Final = "cdi.kubevirt.io/storage.import.registryImageStream"
ANN_REGISTRY_IMAGE_ARCHITECTURE: Final = "cdi.kubevirt.io/storage.import.registryImageArchitecture"
ANN_IMPORT_POD: Final = "cdi.kubevirt.io/storage.import.importPodName"
ANN_INSECURE_SKIP_VERIFY: Final = "cdi.kubevirt.io/storage.import.insecureSkipVerify"
ANN_EXTRA_HEADERS: Final = "cdi.kubevirt.io/storage.import.extraHeaders"
ANN_SECRET_EXTRA_HEADERS: Final = "cdi.kubevirt.io/storage.import.secretExtraHeaders"
ANN_CHECKSUM: Final = "cdi.kubevirt.io/storage.import.checksum"
ANN_CLONE_TOKEN: Final = "cdi.kubevirt.io/storage.clone.token"
ANN_EXTENDED_CLONE_TOKEN: Final = "cdi.kubevirt.io/storage.extended.clone.token"
ANN_PERMISSIVE_CLONE: Final = "cdi.kubevirt.io/permissiveClone"
ANN_CLONE_TYPE: Final = "cdi.kubevirt.io/cloneType"
ANN_CLONE_SOURCE_POD: Final = "cdi.kubevirt.io/storage.sourceClonePodName"
ANN_CLONE_FALLBACK_REASON: Final = "cdi.kubevirt.io/cloneFallbackReason"
ANN_CLONE_STRATEGY: Final = "cdi.kubevirt.io/clone-strategy"
ANN_OWNER_UID: Final = "cdi.kubevirt.io/ownerUID"
ANN_UPLOAD_REQUEST: Final = "cdi.kubevirt.io/storage.upload.target"
ANN_IMMEDIATE_BINDING: Final = "cdi.kubevirt.io/storage.bind.immediate.requested"
ANN_OBJECT_TRANSFER_NAME: Final = "cdi.kubevirt.io/objectTransferName"
ANN_MINIMUM_SUPPORTED_PVC_SIZE: Final = "cdi.kubevirt.io/minimumSupportedPvcSize"
ANN_USE_RWO_FOR_DATA_IMPORT_CRON: Final = "cdi.kubevirt.io/useReadWriteOnceForDataImportCron"
ANN_SNAPSHOT_CLASS_FOR_DATA_IMPORT_CRON: Final = "cdi.kubevirt.io/snapshotClassForDataImportCron"
# Clone size detection caches; upstream spells the prefix "cdi.Kubervirt.io" (sic) and tools match it.
ANN_VIRTUAL_IMAGE_SIZE: Final = "cdi.Kubervirt.io/virtualSize"
ANN_SOURCE_CAPACITY: Final = "cdi.Kubervirt.io/sourceCapacity"
ANN_DEFAULT_STORAGE_CLASS: Final = "storageclass.kubernetes.io/is-default-class"
ANN_DEFAULT_VIRT_STORAGE_CLASS: Final = "storageclass.kubevirt.io/is-default-virt-class"
ANN_DEFAULT_SNAPSHOT_CLASS: Final = "snapshot.storage.kubernetes.io/is-default-class"
ANN_SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"
ANN_POD_NETWORK: Final = "k8s.v1.cni.cncf.io/networks"
ANN_POD_MULTUS_DEFAULT_NETWORK: Final = "v1.multus-cni.io/default-network"
ANN_SIDECAR_ISTIO: Final = "sidecar.istio.io/inject"
ANN_SIDECAR_LINKERD: Final = "linkerd.io/inject"
#: Finalizer ObjectTransfer puts on itself.
FINALIZER_OBJECT_TRANSFER: Final = "cdi.kubevirt.io/objectTransfer"
#: Label on the PVCs/DVs a VM created from its dataVolumeTemplates (KubeVirt).
LABEL_KUBEVIRT_CREATED_BY: Final = "kubevirt.io/created-by"
LABEL_APPLY_STORAGE_PROFILE: Final = "cdi.kubevirt.io/applyStorageProfile"


#: Embedded clusters: the container path the node agent maps to a pod's private runtime directory on the node
#: (mode 0700), where pycdi's own workers put Unix sockets for the components of `pycdi up`.
POD_RUNTIME_DIR: Final = "/run/pycdi"
