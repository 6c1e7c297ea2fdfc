"""The CDIConfig controller."""

from .controller import CDIConfigOptions, CDIConfigReconciler, add_to_manager, compute_status

__all__ = ["CDIConfigOptions", "CDIConfigReconciler", "add_to_manager", "compute_status"]
