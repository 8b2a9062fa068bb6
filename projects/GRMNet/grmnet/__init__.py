"""GRMNet: multi-instance referring segmentation of scene sketches (Ling, Mo and Gao, 2022).

``grmnet.ops`` is plain torch and imports without detectron2; everything else registers
detectron2 components (model, datasets, mapper, evaluator, trainer) at import.
"""

import importlib.util

from . import ops  # noqa: F401

if importlib.util.find_spec("detectron2") is not None:
    from . import data, engine, evaluation, modeling  # noqa: F401  (registration side effects)
    from .config import add_grmnet_config

    __all__ = ["add_grmnet_config", "ops"]
else:  # pragma: no cover - hosts without detectron2 use grmnet.ops only
    __all__ = ["ops"]
