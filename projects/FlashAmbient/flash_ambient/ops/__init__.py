"""Plain-torch operators (no detectron2): attention map, metrics, bilateral filter."""

from .attention import attention_map, masked_l1
from .bilateral import bilateral_filter, bilateral_filter_authors
from .metrics import psnr, rgb_to_gray_pil, ssim_gaussian, ssim_gray_uniform7, ssim_uniform

__all__ = [
    "attention_map",
    "masked_l1",
    "bilateral_filter",
    "bilateral_filter_authors",
    "psnr",
    "rgb_to_gray_pil",
    "ssim_gaussian",
    "ssim_gray_uniform7",
    "ssim_uniform",
]
