"""Zero-DCE++ (Li, Guo, Loy, TPAMI 2021): network, non-reference losses, weights, enhancer.

Torch only; :mod:`.transform` (the detectron2 augmentation) is imported by the mapper.
"""

from .checkpoint import load_zero_dce_weights, read_state_dict, save_zero_dce_weights
from .enhancer import NAME, ZeroDCEEnhancer, build_zero_dce_enhancer
from .losses import (
    LOSS_WEIGHTS,
    color_constancy_loss,
    exposure_loss,
    illumination_smoothness_loss,
    spatial_consistency_loss,
    zero_dce_losses,
)
from .model import ZeroDCEPP, apply_curves

__all__ = [
    "LOSS_WEIGHTS",
    "NAME",
    "ZeroDCEEnhancer",
    "ZeroDCEPP",
    "apply_curves",
    "build_zero_dce_enhancer",
    "color_constancy_loss",
    "exposure_loss",
    "illumination_smoothness_loss",
    "load_zero_dce_weights",
    "read_state_dict",
    "save_zero_dce_weights",
    "spatial_consistency_loss",
    "zero_dce_losses",
]
