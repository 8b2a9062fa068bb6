"""Dataset-root, registration, validation and toy-dataset helpers shared by the projects.

``register_dataset_once`` and ``get_load_report`` need detectron2 and are imported on first use;
the rest of this package does not.
"""

import importlib

from .paths import datasets_root
from .toy import ensure_generated, seeded_rng

_LAZY = {
    "register_dataset_once": ".registration",
    "get_load_report": ".registration",
    "record_key": ".registration",
}

__all__ = ["datasets_root", "ensure_generated", "seeded_rng"] + list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
