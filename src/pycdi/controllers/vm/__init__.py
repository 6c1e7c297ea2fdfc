"""KubeVirt VirtualMachines' storage: DataVolumes from `dataVolumeTemplates`, their readiness in the VM's status."""

from .controller import VirtualMachineReconciler, add_to_manager, data_volume_for

__all__ = ["VirtualMachineReconciler", "add_to_manager", "data_volume_for"]
