"""Datasets of the LowLightNL project (registered at import), mapper and augmentations."""

from . import builtin, checks  # noqa: F401  (registration side effects)
from .mapper import LowLightDatasetMapper
from .toy import generate_toy_coco
from .transforms import Enhance, EnhanceTransform, LowLightTransform, RandomLowLight

__all__ = [
    "Enhance",
    "EnhanceTransform",
    "LowLightDatasetMapper",
    "LowLightTransform",
    "RandomLowLight",
    "generate_toy_coco",
]
