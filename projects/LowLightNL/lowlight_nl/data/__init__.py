"""Datasets of the LowLightNL project (registered at import)."""

from . import builtin  # noqa: F401
from .toy import generate_toy_coco

__all__ = ["generate_toy_coco"]
