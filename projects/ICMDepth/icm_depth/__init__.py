"""ICMDepth: monocular depth estimation with instance clustering guidance (Kim, Jin, Kim).

``icm_depth.ops`` is plain torch and imports without detectron2; the rest registers the
meta-architecture, backbones, datasets, mapper and evaluator with detectron2 and d2common.
"""

import importlib.util

from . import ops  # noqa: F401

if importlib.util.find_spec("detectron2") is not None:
    from . import data, engine, evaluation, modeling  # noqa: F401  (registration side effects)
    from .config import add_icm_depth_config

    __all__ = ["add_icm_depth_config", "ops"]
else:  # pragma: no cover - hosts with torch only
    __all__ = ["ops"]
