"""The DataVolume controller: DataVolume -> PVC (spec, annotations, owner), PVC -> DataVolume status."""

from ...api.sizes import required_space
from .controller import DataVolumeReconciler, add_to_manager
from .render import ClaimNotValid, RenderContext, render_pvc_spec

__all__ = ["ClaimNotValid", "DataVolumeReconciler", "RenderContext", "add_to_manager", "render_pvc_spec",
           "required_space"]
