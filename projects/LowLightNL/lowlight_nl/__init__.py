"""LowLightNL: low-light instance segmentation with weighted non-local blocks."""

import importlib.util

if importlib.util.find_spec("detectron2") is not None:
    from . import data  # noqa: F401  (registers datasets)
    from .config import add_lowlight_nl_config

    __all__ = ["add_lowlight_nl_config"]
