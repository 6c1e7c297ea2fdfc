"""The import controller: importer pods for PVCs carrying import annotations (upstream's import-controller)."""

from .controller import ImportOptions, ImportReconciler, add_to_manager
from .podspec import PodOptions, importer_pod, scratch_pvc
from .state import Outcome, observe

__all__ = ["ImportOptions", "ImportReconciler", "Outcome", "PodOptions", "add_to_manager", "importer_pod", "observe",
           "scratch_pvc"]
