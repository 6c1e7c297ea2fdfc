"""The upload controller: upload worker pods for PVCs annotated as upload targets (upstream's upload-controller)."""

from .controller import UploadOptions, UploadReconciler, add_to_manager
from .podspec import is_upload_pvc, upload_pod, upload_pod_name

__all__ = ["UploadOptions", "UploadReconciler", "add_to_manager", "is_upload_pvc", "upload_pod", "upload_pod_name"]
