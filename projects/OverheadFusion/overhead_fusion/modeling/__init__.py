from .meta_arch import FUSION_MODES, OverheadFusionNet, weighted_cross_entropy
from .unet import UNet, unet_channels

__all__ = ["FUSION_MODES", "OverheadFusionNet", "weighted_cross_entropy", "UNet", "unet_channels"]
