"""Training augmentation of image, depth and instance ids (numpy / OpenCV, no torch).

Photometric changes touch the image only. A geometric change (rotation, scale, translation about
the image centre) warps the image bilinearly and depth and instance ids with nearest-neighbour
sampling (no depth is invented between a vehicle and the wall behind it, no id is blended);
pixels that come from outside the frame get depth 0 (invalid) and id 0. Zooming in by a factor s
is what the camera would see from s times closer, so depth is divided by s (with
``scale_depth``).
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

# ITU-R BT.601 luma, the grey level used by contrast and saturation changes.
_LUMA = np.array([0.299, 0.587, 0.114])
# PIL's ImageFilter.SMOOTH kernel: ImageEnhance.Sharpness blends the image with it.
_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0


@dataclass(frozen=True)
class PhotometricAugmentation:
    """Each change is applied with probability ``prob``; factors are drawn uniformly from
    [1 - x, 1 + x] (hue: a shift of [-x, x] of the colour circle)."""

    prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    gamma: float = 0.1
    hue: float = 0.05
    sharpness: float = 0.5

    def __call__(self, image: np.ndarray, rng, image_format: str = "RGB") -> np.ndarray:
        """(H, W, 3) uint8 in ``image_format`` (RGB or BGR) -> augmented uint8, same format."""
        rgb = image[:, :, ::-1] if image_format == "BGR" else image
        x = rgb.astype(np.float32)
        if self.brightness and rng.random() < self.prob:
            x = x * _factor(rng, self.brightness)
        if self.contrast and rng.random() < self.prob:
            mean = float((np.clip(x, 0, 255) @ _LUMA).mean())
            x = mean + (x - mean) * _factor(rng, self.contrast)
        if self.saturation and rng.random() < self.prob:
            grey = (np.clip(x, 0, 255) @ _LUMA)[:, :, None]
            x = grey + (x - grey) * _factor(rng, self.saturation)
        if self.gamma and rng.random() < self.prob:
            x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** _factor(rng, self.gamma)
        x = np.clip(x, 0, 255)
        if self.hue and rng.random() < self.prob:
            hsv = cv2.cvtColor(np.rint(x).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
            shift = int(round(rng.uniform(-self.hue, self.hue) * 256))
            hsv[:, :, 0] = (hsv[:, :, 0].astype(np.int32) + shift) % 256
            x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
        if self.sharpness and rng.random() < self.prob:
            smooth = cv2.filter2D(x, -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
            x = smooth + (x - smooth) * _factor(rng, self.sharpness)
        out = np.rint(np.clip(x, 0, 255)).astype(np.uint8)
        return np.ascontiguousarray(out[:, :, ::-1] if image_format == "BGR" else out)


@dataclass(frozen=True)
class GeometricAugmentation:
    """A random similarity transform about the image centre, applied with probability ``prob``.

    rotation: maximum angle in degrees; scale: (min, max) zoom factor; translation: maximum
    shift as a fraction of the image height / width.
    """

    prob: float = 0.5
    rotation: float = 2.5
    scale: Tuple[float, float] = (1.0, 1.2)
    translation: float = 0.05
    scale_depth: bool = True

    def draw(self, rng, size: Tuple[int, int]) -> Optional[Tuple[np.ndarray, float]]:
        """A (2, 3) affine matrix (output <- input) and its zoom, or None (no change)."""
        if rng.random() >= self.prob:
            return None
        h, w = size
        angle = rng.uniform(-self.rotation, self.rotation) if self.rotation else 0.0
        zoom = rng.uniform(*self.scale) if self.scale else 1.0
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, zoom)
        if self.translation:
            matrix[0, 2] += rng.uniform(-self.translation, self.translation) * w
            matrix[1, 2] += rng.uniform(-self.translation, self.translation) * h
        return matrix, zoom

    def __call__(self, image, depth, ids, rng):
        """image (H, W, 3) uint8, depth (H, W) float (0 invalid), ids (H, W) ints -> warped."""
        drawn = self.draw(rng, depth.shape)
        if drawn is None:
            return image, depth, ids
        return warp_sample(image, depth, ids, *drawn, scale_depth=self.scale_depth)


def warp_sample(image, depth, ids, matrix: np.ndarray, zoom: float, scale_depth: bool = True):
    """Applies one affine ``matrix`` (2, 3) to image (bilinear), depth and ids (nearest).

    Pixels mapped from outside the frame: image 0, depth 0 (invalid), id 0. Depth is divided
    by ``zoom`` when ``scale_depth``.
    """
    h, w = depth.shape
    flags = dict(borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, **flags)
    depth = cv2.warpAffine(
        depth.astype(np.float32), matrix, (w, h), flags=cv2.INTER_NEAREST, **flags
    )
    ids = cv2.warpAffine(ids.astype(np.int32), matrix, (w, h), flags=cv2.INTER_NEAREST, **flags)
    if scale_depth and zoom != 1.0:
        depth = depth / np.float32(zoom)
    return image, depth, ids


def _factor(rng, spread: float) -> float:
    return float(rng.uniform(1.0 - spread, 1.0 + spread))
