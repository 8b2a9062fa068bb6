"""Models of LowLightNL (registered in detectron2's registries at import)."""

from .backbone import (
    WeightedNonLocalResNet,
    build_resnet_wnl_backbone,
    build_resnet_wnl_fpn_backbone,
    nonlocal_blocks_disabled,
    nonlocal_blocks_of,
)
from .meta_arch import LowLightRCNN

__all__ = [
    "LowLightRCNN",
    "WeightedNonLocalResNet",
    "build_resnet_wnl_backbone",
    "build_resnet_wnl_fpn_backbone",
    "nonlocal_blocks_disabled",
    "nonlocal_blocks_of",
]
