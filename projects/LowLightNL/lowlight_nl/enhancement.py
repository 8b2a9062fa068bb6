"""Classic low-light enhancers without learned weights, for two-stage baselines (paper Table 1).

Both work on 8-bit RGB images and keep the size: gamma correction ``255 (I / 255)^(1 / g)`` per
channel, and CLAHE (Pizer et al.) on the L channel of CIE Lab, so hues are left alone.
"""

import cv2
import numpy as np

ENHANCERS = ("none", "gamma", "clahe")
# Enhancers with weights, built once from the config (``lowlight_nl.zero_dce``), not by enhance().
LEARNED_ENHANCERS = ("zero_dce++",)


def gamma_correction(image: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """(H, W, C) uint8 -> (H, W, C) uint8 with ``255 * (I / 255) ** (1 / gamma)``."""
    if gamma <= 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    lut = np.rint(255.0 * (np.arange(256) / 255.0) ** (1.0 / gamma)).astype(np.uint8)
    return lut[_check_uint8(image)]


def clahe(image: np.ndarray, clip_limit: float = 2.0, tile_grid: int = 8) -> np.ndarray:
    """CLAHE on the lightness of an (H, W, 3) uint8 RGB image (OpenCV), returns uint8 RGB."""
    image = _check_uint8(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"CLAHE expects an (H, W, 3) RGB image, got {image.shape}")
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    op = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tile_grid, tile_grid))
    lab[:, :, 0] = op.apply(np.ascontiguousarray(lab[:, :, 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def enhance(image: np.ndarray, method: str, gamma: float = 2.2, clip_limit: float = 2.0,
            tile_grid: int = 8) -> np.ndarray:  # fmt: skip
    """Applies the enhancer ``method`` (one of ENHANCERS) to an (H, W, 3) uint8 RGB image."""
    if method == "none":
        return image
    if method == "gamma":
        return gamma_correction(image, gamma)
    if method == "clahe":
        return clahe(image, clip_limit, tile_grid)
    if method in LEARNED_ENHANCERS:
        raise ValueError(
            f"{method!r} has weights: build it once with lowlight_nl.zero_dce.ZeroDCEEnhancer"
        )
    raise ValueError(
        f"unknown enhancer {method!r}; expected one of {ENHANCERS + LEARNED_ENHANCERS}"
    )


def _check_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"enhancers expect uint8 images, got {image.dtype}")
    return image
