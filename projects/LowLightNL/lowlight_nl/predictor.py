"""Single-image inference as the test loader runs it: the enhancer first, then the model."""

import numpy as np
from detectron2.engine import DefaultPredictor

from .data.mapper import build_enhance_augmentation


class LowLightPredictor:
    """detectron2's ``DefaultPredictor`` preceded by ``INPUT.LOWLIGHT_NL.ENHANCER`` (gamma
    correction, CLAHE or Zero-DCE++, the two-stage baselines), as :class:`LowLightDatasetMapper`
    applies it in evaluation. ``DefaultPredictor`` alone would skip the enhancer. Zero-DCE++'s
    weights are loaded here: a missing file fails at construction.
    """

    def __init__(self, cfg):
        ll = cfg.INPUT.LOWLIGHT_NL
        self.method = ll.ENHANCER
        self.input_format = cfg.INPUT.FORMAT
        self.enhancer = None
        if ll.ENHANCER != "none":
            self.enhancer = build_enhance_augmentation(cfg).get_transform(None)
        self.predictor = DefaultPredictor(cfg)

    def enhance(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 in ``INPUT.FORMAT`` -> the enhanced image, same size and format."""
        return image if self.enhancer is None else self.enhancer.apply_image(image)

    def __call__(self, image: np.ndarray) -> dict:
        """
        Args:
            image: (H, W, 3) uint8 in ``INPUT.FORMAT``.

        Returns:
            the model's output for the enhanced image (``{"instances": Instances}``).
        """
        return self.predictor(self.enhance(image))
