"""LowLightNL: low-light instance segmentation with weighted non-local blocks.

``lowlight_nl.ops`` (torch only) and ``lowlight_nl.synthesis`` (numpy / OpenCV) import without
detectron2; the models, datasets, mapper and trainer register themselves when it is installed.
"""

import importlib.util

from . import ops, synthesis  # noqa: F401

if importlib.util.find_spec("detectron2") is not None:
    from . import data, engine, modeling  # noqa: F401  (registration side effects)
    from .config import add_lowlight_nl_config

    __all__ = ["add_lowlight_nl_config"]
