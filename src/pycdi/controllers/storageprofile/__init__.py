"""The StorageProfile controller and the capabilities of well-known provisioners."""

from .controller import StorageProfileReconciler, add_to_manager

__all__ = ["StorageProfileReconciler", "add_to_manager"]
