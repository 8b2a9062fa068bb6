"""ICMDepth evaluation: depth metrics, crops, and the registered evaluator."""

from .evaluator import ICMDepthEvaluator
from .metrics import crop_mask, image_depth_stats, summarize_depth_stats

__all__ = ["ICMDepthEvaluator", "crop_mask", "image_depth_stats", "summarize_depth_stats"]
