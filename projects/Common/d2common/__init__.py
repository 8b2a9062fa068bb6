"""Paper-agnostic building blocks shared by every project of this plugin.

Registries for trainers, evaluators and dataset mappers (selected by config keys), the trainer
base class used by ``tools/train_net.py``, dataset-root and toy-dataset helpers, evaluator bases,
visualisation and test utilities. Nothing here knows about a particular paper.
"""

from .config import add_common_config
from .registry import DATASET_MAPPER_REGISTRY, EVALUATOR_REGISTRY, TRAINER_REGISTRY

__all__ = [
    "add_common_config",
    "DATASET_MAPPER_REGISTRY",
    "EVALUATOR_REGISTRY",
    "TRAINER_REGISTRY",
]
