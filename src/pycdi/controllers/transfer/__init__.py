"""The ObjectTransfer controller: moves a PVC or a DataVolume to another namespace or name, no data copied."""

from .api import OBJECT_TRANSFERS
from .controller import NAME, TransferReconciler, add_to_manager
from .crashhook import CrashHook

__all__ = ["NAME", "OBJECT_TRANSFERS", "CrashHook", "TransferReconciler", "add_to_manager"]
