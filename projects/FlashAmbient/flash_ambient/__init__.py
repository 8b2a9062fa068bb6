"""FlashAmbient: ambient-light generation from flash images with an attention-guided cGAN.

Chávez, Mora and Cayllahua-Cahuina, "Ambient Lighting Generation for Flash Images with Guided
Conditional Adversarial Networks" (VISAPP 2020). ``flash_ambient.ops`` needs only torch.
"""

import importlib.util

from . import ops  # noqa: F401

if importlib.util.find_spec("detectron2") is not None:
    from . import data, engine, evaluation, modeling  # noqa: F401  (registration side effects)
    from .config import add_flash_ambient_config

    __all__ = ["add_flash_ambient_config"]
