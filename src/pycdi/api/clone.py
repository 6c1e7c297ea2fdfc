"""Clone names shared by the admission webhook, the DataVolume clone controller, the clone populator, the
host-assisted clone controller and the cloner workers: upstream CDI's annotations, phases, events and messages."""

from __future__ import annotations

from typing import Final

from . import constants as c

# ---- the target claim's annotations and labels (`pkg/controller/common/util.go`, `populators`) -----------
#: "srcns/srcname": the claim a host-assisted clone fills (upstream keeps the old `k8s.io` prefix).
ANN_CLONE_REQUEST: Final = "k8s.io/CloneRequest"
#: "true" once a host-assisted clone into the claim completed.
ANN_CLONE_OF: Final = "k8s.io/CloneOf"
#: The clone populator's progress through its plan (`Pending`, `CSIClone`, ..., `Succeeded`, `Error`).
ANN_CLONE_PHASE: Final = "cdi.kubevirt.io/clonePhase"
ANN_CLONE_ERROR: Final = "cdi.kubevirt.io/cloneError"
#: The namespace of the VolumeCloneSource of a cross-namespace target.
ANN_DATA_SOURCE_NAMESPACE: Final = "cdi.kubevirt.io/dataSourceNamespace"
#: Where events of a temporary claim are copied to: "ns/name" and the kind of that object.
ANN_EVENT_SOURCE: Final = "cdi.kubevirt.io/events.source"
ANN_EVENT_SOURCE_KIND: Final = "cdi.kubevirt.io/events.source.kind"
#: "ns/name" of the DataVolume owning an object in another namespace (ownerReferences cannot cross namespaces).
ANN_OWNED_BY_DATA_VOLUME: Final = "cdi.kubevirt.io/ownedByDataVolume"
#: The UID of the target claim on everything its clone made (temporary claims, snapshots, pods).
LABEL_OWNED_BY_UID: Final = "cdi.kubevirt.io/OwnedByUID"
LABEL_EXCLUDE_FROM_BACKUP: Final = "velero.io/exclude-from-backup"
FINALIZER_CLONE_POPULATOR: Final = "cdi.kubevirt.io/clonePopulator"
#: On a DataVolume cloning from another namespace, until its VolumeCloneSource there is gone.
FINALIZER_CROSS_NAMESPACE: Final = "cdi.kubevirt.io/dataVolumeFinalizer"
#: pycdi: the Secret holding the shared secret a host-assisted clone's two workers authenticate with.
ANN_CLONE_SECRET: Final = "cdi.kubevirt.io/storage.clone.secret"

# ---- the populator ----------------------------------------------------------------------------------------
VOLUME_CLONE_SOURCE_KIND: Final = "VolumeCloneSource"
VOLUME_CLONE_SOURCE_PREFIX: Final = "volume-clone-source"
TMP_PVC_PREFIX: Final = "tmp-pvc"
TMP_SNAPSHOT_PREFIX: Final = "tmp-snapshot"
PHASE_PENDING: Final = "Pending"
PHASE_SUCCEEDED: Final = "Succeeded"
PHASE_ERROR: Final = "Error"
PHASE_CSI_CLONE: Final = "CSIClone"
PHASE_HOST_CLONE: Final = "HostClone"
PHASE_PREP_CLAIM: Final = "PrepClaim"
PHASE_REBIND: Final = "Rebind"
PHASE_SNAPSHOT_CLONE: Final = "SnapshotClone"
PHASE_SNAPSHOT: Final = "Snapshot"
P = c.DataVolumePhase
#: populatorPhaseMap: the DataVolume phase each populator phase shows.
DATA_VOLUME_PHASES: Final[dict[str, str]] = {
    "": P.CLONE_SCHEDULED, PHASE_PENDING: P.CLONE_SCHEDULED, PHASE_SUCCEEDED: P.SUCCEEDED,
    PHASE_CSI_CLONE: P.CSI_CLONE_IN_PROGRESS, PHASE_HOST_CLONE: P.CLONE_IN_PROGRESS,
    PHASE_PREP_CLAIM: P.PREP_CLAIM_IN_PROGRESS, PHASE_REBIND: P.REBIND_IN_PROGRESS,
    PHASE_SNAPSHOT_CLONE: P.CLONE_FROM_SNAPSHOT_SOURCE_IN_PROGRESS,
    PHASE_SNAPSHOT: P.SNAPSHOT_FOR_SMART_CLONE_IN_PROGRESS, PHASE_ERROR: P.FAILED,
}

# ---- strategy fallbacks (`pkg/controller/clone/planner.go`) -------------------------------------------------
NO_VOLUME_SNAPSHOT_CLASS: Final = ("NoVolumeSnapshotClass", "No compatible volumesnapshotclass found")
INCOMPATIBLE_VOLUME_MODES: Final = ("IncompatibleVolumeModes", "The volume modes of source and target are incompatible")
NO_VOLUME_EXPANSION: Final = ("NoVolumeExpansion", "No volume expansion is possible")
INCOMPATIBLE_PROVISIONERS: Final = ("IncompatibleProvisioners", "Provisioners are incompatible")
NO_POPULATOR: Final = ("NoPopulator", "In tree storage class does not support snapshot/clone")

# ---- events and messages (`datavolume/clone-controller-base.go`, `clone/planner.go`) ----------------------------
CLONE_SCHEDULED: Final = "CloneScheduled"
CLONE_IN_PROGRESS: Final = "CloneInProgress"
CLONE_FAILED: Final = "CloneFailed"
CLONE_SUCCEEDED: Final = "CloneSucceeded"
SNAPSHOT_FOR_SMART_CLONE_IN_PROGRESS: Final = "SnapshotForSmartCloneInProgress"
CLONE_FROM_SNAPSHOT_SOURCE_IN_PROGRESS: Final = "CloneFromSnapshotSourceInProgress"
CSI_CLONE_IN_PROGRESS: Final = "CSICloneInProgress"
PREP_CLAIM_IN_PROGRESS: Final = "PrepClaimInProgress"
REBIND_IN_PROGRESS: Final = "RebindInProgress"
MSG_CLONE_SCHEDULED: Final = "Cloning from {}/{} into {}/{} scheduled"
MSG_CLONE_IN_PROGRESS: Final = "Cloning from {}/{} into {}/{} in progress"
MSG_CLONE_FAILED: Final = "Cloning from {}/{} into {}/{} failed"
MSG_CLONE_SUCCEEDED: Final = "Successfully cloned from {}/{} into {}/{}"
MSG_SMART_CLONE_IN_PROGRESS: Final = "Creating snapshot for smart-clone is in progress (for pvc {}/{})"
MSG_CLONE_FROM_SNAPSHOT_SOURCE_IN_PROGRESS: Final = "Creating PVC from snapshot source is in progress (for {} {}/{})"
MSG_CSI_CLONE_IN_PROGRESS: Final = "CSI Volume clone in progress (for pvc {}/{})"
MSG_PREP_CLAIM_IN_PROGRESS: Final = "Prepping PersistentVolumeClaim for DataVolume {}/{}"
MSG_REBIND_IN_PROGRESS: Final = "Rebinding PersistentVolumeClaim for DataVolume {}/{}"
CLONE_VALIDATION_FAILED: Final = c.EVENT_CLONE_VALIDATION_FAILED
MSG_CLONE_VALIDATION_FAILED: Final = "The clone doesn't meet the validation requirements: {}"
#: The populator's event on a target whose source fails validation (no detail: the DataVolume's event has it).
MSG_CLONE_VALIDATION_FAILED_SHORT: Final = "The clone doesn't meet the validation requirements"
CLONE_WITHOUT_SOURCE: Final = "CloneWithoutSource"
MSG_CLONE_WITHOUT_SOURCE: Final = "The source {} {} doesn't exist"
CLONE_SOURCE_IN_USE: Final = c.EVENT_CLONE_SOURCE_IN_USE
MSG_CLONE_SOURCE_IN_USE: Final = "pod {}/{} using PersistentVolumeClaim {}"
ERR_INCOMPATIBLE_PVC: Final = "ErrIncompatiblePVC"
SIZE_DETECTION_POD_CREATED: Final = ("SizeDetectionPodCreated", "Size-detection pod created")
SIZE_DETECTION_POD_NOT_READY: Final = ("SizeDetectionPodNotReady", "The size detection pod is not finished yet")
IMPORT_PVC_NOT_READY: Final = ("ImportPVCNotReady", "The source PVC is not fully imported")
MSG_SIZE_DETECTION_FAILED: Final = "Size-detection pod failed due to {}"
CLONE_COMPLETE: Final = "Clone Complete"
CLONE_PENDING: Final = "Clone Pending"
ERR_UNABLE_TO_CLONE: Final = "ErrUnableToClone"

# ---- host-assisted clone workers ----------------------------------------------------------------------------------
#: `<target claim UID>-source-pod` in the source namespace (upstream's name).
SOURCE_POD_SUFFIX: Final = "-source-pod"
#: The target worker: `cdi-clone-target-<claim>` beside the claim (upstream runs its upload server there).
TARGET_POD_PREFIX: Final = "cdi-clone-target"
SIZE_DETECTION_PREFIX: Final = "size-detection"
#: Where the source worker sees the source volume (upstream's ClonerMountPath) and the target its volume.
SOURCE_MOUNT_PATH: Final = "/var/run/cdi/clone/source"
TARGET_MOUNT_PATH: Final = "/data"
SOURCE_BLOCK_PATH: Final = "/dev/cdi-block-volume"
TARGET_BLOCK_PATH: Final = "/dev/cdi-block-volume"
CLONER_PORT: Final = 8443
#: `kubevirt_cdi_clone_progress_total{ownerUID}`: the source worker's progress metric (percent).
PROGRESS_METRIC: Final = "kubevirt_cdi_clone_progress"
