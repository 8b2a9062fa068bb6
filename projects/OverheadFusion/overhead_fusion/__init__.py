"""OverheadFusion: weakly supervised fusion of multiple overhead images (Rafique et al. 2019).

``overhead_fusion.ops`` needs only torch; the rest registers the model, datasets, mapper,
evaluator and trainer in detectron2's and d2common's registries.
"""

import importlib.util

from . import ops  # noqa: F401

if importlib.util.find_spec("detectron2") is not None:
    from . import data, engine, evaluation, modeling  # noqa: F401
    from .config import add_overhead_fusion_config

    __all__ = ["add_overhead_fusion_config"]
