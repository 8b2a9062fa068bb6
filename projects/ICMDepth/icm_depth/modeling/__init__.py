"""ICMDepth models: F1/F2/F3 backbones, depth-cluster decoders and the meta-architecture."""

from .backbone import ICMFeaturePyramid, ICMResNetBackbone, ICMSwinBackbone
from .cluster_decoder import IndependentClusterDecoder, SequentialClusterDecoder
from .meta_arch import ICMDepthEstimator

__all__ = [
    "ICMFeaturePyramid",
    "ICMResNetBackbone",
    "ICMSwinBackbone",
    "IndependentClusterDecoder",
    "SequentialClusterDecoder",
    "ICMDepthEstimator",
]
