"""PSNR / SSIM evaluation of generated ambient images."""

from .evaluator import METRIC_DESCRIPTIONS, FlashAmbientEvaluator, quantize

__all__ = ["FlashAmbientEvaluator", "METRIC_DESCRIPTIONS", "quantize"]
