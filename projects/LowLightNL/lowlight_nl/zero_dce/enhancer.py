"""Zero-DCE++ as an image-to-image enhancer for the two-stage baseline (uint8 in, uint8 out)."""

import numpy as np
import torch

from .checkpoint import load_zero_dce_weights
from .model import ZeroDCEPP

NAME = "zero_dce++"  # the value of INPUT.LOWLIGHT_NL.ENHANCER


class ZeroDCEEnhancer:
    """Runs a :class:`ZeroDCEPP` on (H, W, 3) uint8 RGB images.

    Pixels are scaled to [0, 1], enhanced, and written back as the release saves its results
    (``torchvision.utils.save_image``: clamp to [0, 1], ``floor(255 y + 0.5)``).
    """

    def __init__(self, model: ZeroDCEPP, device: str = "cpu", weights: str = ""):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.weights = weights

    @classmethod
    def from_weights(cls, weights: str, scale_factor: int = 12, device: str = "cpu"):
        """Loads ``weights`` now, so that a missing or wrong file stops the run at start-up."""
        if not weights:
            raise ValueError(
                f"INPUT.LOWLIGHT_NL.ENHANCER {NAME!r} needs INPUT.LOWLIGHT_NL.ZERO_DCE.WEIGHTS: "
                "the authors' Epoch99.pth or a checkpoint of tools/train_zero_dce.py"
            )
        model = load_zero_dce_weights(ZeroDCEPP(scale_factor), weights)
        return cls(model, device, weights)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W, 3) uint8 RGB of the same size."""
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise TypeError(f"Zero-DCE++ expects an (H, W, 3) uint8 image, got {rgb.dtype} "
                            f"{rgb.shape}")  # fmt: skip
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
        x = x.permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            y, _ = self.model(x)
        y = (y[0] * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
        return y.permute(1, 2, 0).cpu().numpy()

    def __repr__(self) -> str:
        return (f"ZeroDCEEnhancer(weights={self.weights!r}, "
                f"scale_factor={self.model.scale_factor}, device={self.device})")  # fmt: skip


def build_zero_dce_enhancer(cfg) -> ZeroDCEEnhancer:
    """The enhancer described by ``cfg.INPUT.LOWLIGHT_NL.ZERO_DCE``."""
    z = cfg.INPUT.LOWLIGHT_NL.ZERO_DCE
    return ZeroDCEEnhancer.from_weights(z.WEIGHTS, z.SCALE_FACTOR, z.DEVICE)
