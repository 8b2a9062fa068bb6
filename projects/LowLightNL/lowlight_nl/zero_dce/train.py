"""Zero-reference training of Zero-DCE++ on low-light images alone (``tools/train_zero_dce.py``).

As the release's ``lowlight_train.py``: images resized to a square (512 px there), Adam with lr
1e-4 and weight decay 1e-4, gradient norm clipped at 0.1, scale factor 1 while training.
"""

import logging
from typing import Dict, Iterator, List, Sequence

import cv2
import numpy as np
import torch

from d2common.data.validation import BadSampleError, SampleSkipper, read_image_checked

from .losses import EXPOSURE_LEVEL, zero_dce_losses

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class LowLightBatches:
    """Endless batches of (B, 3, size, size) float RGB in [0, 1] from image files.

    Files are read in a new random order each pass (``seed``). An unreadable, truncated or
    too-small file is skipped with a warning and counted (``skipper.num_skipped``); a pass in
    which every file fails raises ``RuntimeError``.
    """

    def __init__(self, paths: Sequence[str], batch_size: int = 8, size: int = 512, seed: int = 0):
        if not paths:
            raise ValueError("no training images")
        self.paths: List[str] = list(paths)
        self.batch_size = batch_size
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.skipper = SampleSkipper(is_train=True, what="training image")

    def _read(self, path: str):
        try:
            rgb = read_image_checked(path, format="RGB", min_size=(2, 2))
        except BadSampleError as e:
            return self.skipper.skip_or_raise(e)
        rgb = cv2.resize(rgb, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0

    def _images(self) -> Iterator[torch.Tensor]:
        while True:
            read = 0
            for i in self.rng.permutation(len(self.paths)):
                image = self._read(self.paths[i])
                if image is not None:
                    read += 1
                    yield image
            if read == 0:
                raise RuntimeError(
                    f"none of the {len(self.paths)} training images could be read "
                    f"(skipped: {dict(self.skipper.reasons)})"
                )

    def __iter__(self) -> Iterator[torch.Tensor]:
        images = self._images()
        while True:
            yield torch.stack([next(images) for _ in range(self.batch_size)])


def build_optimizer(model: torch.nn.Module, lr: float = 1e-4, weight_decay: float = 1e-4):
    """Adam as in the release."""
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


def train_step(model, optimizer, images: torch.Tensor, grad_clip: float = 0.1,
               exposure_level: float = EXPOSURE_LEVEL) -> Dict[str, float]:  # fmt: skip
    """One optimisation step on (B, 3, H, W) images in [0, 1]; returns the weighted losses
    (``loss_*``) and their sum (``total``) before the step, and the output's mean."""
    model.train()
    enhanced, curves = model(images)
    losses = zero_dce_losses(images, enhanced, curves, exposure_level)
    total = sum(losses.values())
    optimizer.zero_grad()
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    out = {k: float(v) for k, v in losses.items()}
    out.update(total=float(total), mean=float(enhanced.detach().mean()))
    return out


@torch.no_grad()
def evaluate(model, images: torch.Tensor, exposure_level: float = EXPOSURE_LEVEL):
    """The same figures as :func:`train_step` without a step (model in eval mode)."""
    model.eval()
    enhanced, curves = model(images)
    losses = zero_dce_losses(images, enhanced, curves, exposure_level)
    out = {k: float(v) for k, v in losses.items()}
    out.update(total=float(sum(losses.values())), mean=float(enhanced.mean()))
    return out
