"""Paper-agnostic building blocks shared by every project of this plugin.

Registries for trainers, evaluators and dataset mappers (selected by config keys), the trainer
base class used by ``tools/train_net.py``, dataset-root and toy-dataset helpers, evaluator bases,
visualisation and test utilities. Nothing here knows about a particular paper.

The names below are imported on first use, so that the detectron2-free modules
(``d2common.data.validation``, ``d2common.prepare``) load without detectron2.
"""

import importlib

_LAZY = {
    "add_common_config": ".config",
    "DATASET_MAPPER_REGISTRY": ".registry",
    "EVALUATOR_REGISTRY": ".registry",
    "TRAINER_REGISTRY": ".registry",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
