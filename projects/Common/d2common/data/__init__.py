"""Dataset-root, registration and toy-dataset helpers shared by the projects."""

from .paths import datasets_root
from .registration import register_dataset_once
from .toy import ensure_generated, seeded_rng

__all__ = ["datasets_root", "register_dataset_once", "ensure_generated", "seeded_rng"]
