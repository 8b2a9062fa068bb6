"""GRMNet model parts (registered in detectron2's registries at import)."""

from .backbone import SketchNet, build_grm_sketchnet_fpn_backbone
from .meta_arch import GRMNet
from .roi_heads import GRMROIHeads
from .rpn import GRMRPN

__all__ = ["GRMNet", "GRMROIHeads", "GRMRPN", "SketchNet", "build_grm_sketchnet_fpn_backbone"]
