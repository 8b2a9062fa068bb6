"""Lv et al.'s low-light image synthesis (numpy / OpenCV / scipy only)."""

from .camera_response import CameraResponses, load_camera_responses
from .lowlight import (
    LowLightParams,
    LowLightRanges,
    LowLightSynthesizer,
    darken,
    demosaic_rggb,
    image_rng,
    mosaic_rggb,
    noise_std,
)

__all__ = [
    "CameraResponses",
    "load_camera_responses",
    "LowLightParams",
    "LowLightRanges",
    "LowLightSynthesizer",
    "darken",
    "demosaic_rggb",
    "image_rng",
    "mosaic_rggb",
    "noise_std",
]
