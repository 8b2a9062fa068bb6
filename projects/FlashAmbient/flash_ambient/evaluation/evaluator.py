"""Per-image PSNR and two SSIM variants, written as CSV and averaged."""

import logging
from collections import OrderedDict

import torch

from d2common.evaluation import PerImageMetricEvaluator
from d2common.registry import EVALUATOR_REGISTRY

from ..ops import psnr, ssim_gaussian, ssim_gray_uniform7

logger = logging.getLogger(__name__)

METRIC_DESCRIPTIONS = OrderedDict(
    PSNR="PSNR on RGB uint8 (prediction rounded), MAX = 255",
    SSIM_rgb_gaussian="SSIM of Wang et al.: RGB, 11x11 Gaussian window (sigma 1.5), data range 255",
    SSIM_gray_uniform7="the paper's SSIM: grayscale (PIL 'L'), 7x7 uniform window, data range 255",
)


def quantize(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) float in [0, 1] -> uint8 on the 0-255 scale, rounded to nearest."""
    return (image.detach().float() * 255.0).round().clamp(0, 255).to(torch.uint8)


@EVALUATOR_REGISTRY.register()
class FlashAmbientEvaluator(PerImageMetricEvaluator):
    """Scores ``output["ambient"]`` against ``input["ambient"]`` (the mapper's resized target).

    Metrics (see ``METRIC_DESCRIPTIONS``): ``PSNR``, ``SSIM_rgb_gaussian`` (the usual SSIM) and
    ``SSIM_gray_uniform7`` (comparable with the paper's tables). Per-image rows go to
    ``per_image_metrics.csv``; results are ``{"flash_ambient": {metric: mean}}``.
    """

    task_name = "flash_ambient"

    def __init__(self, cfg, dataset_name: str, output_folder: str = None):
        """Registry signature (``TEST.EVALUATOR: FlashAmbientEvaluator``); ``cfg`` is unused."""
        super().__init__(dataset_name, output_dir=output_folder)

    def compute_image_metrics(self, input, output):
        if "ambient" not in input:
            raise ValueError(f"{input.get('file_name')}: no ambient image to evaluate against")
        pred = quantize(output["ambient"].cpu())[None]
        target = input["ambient"].cpu().to(torch.uint8)[None]
        if pred.shape != target.shape:
            raise ValueError(
                f"{input.get('file_name')}: prediction {tuple(pred.shape[1:])} and target "
                f"{tuple(target.shape[1:])} differ in size"
            )
        return OrderedDict(
            PSNR=float(psnr(pred, target, 255.0)[0]),
            SSIM_rgb_gaussian=float(ssim_gaussian(pred, target, 255.0)[0]),
            SSIM_gray_uniform7=float(ssim_gray_uniform7(pred, target)[0]),
        )

    def evaluate(self):
        results = super().evaluate()
        if results:
            for name, text in METRIC_DESCRIPTIONS.items():
                logger.info(
                    "%s on %s: %.4f  (%s)",
                    name,
                    self.dataset_name,
                    results[self.task_name][name],
                    text,
                )
        return results
