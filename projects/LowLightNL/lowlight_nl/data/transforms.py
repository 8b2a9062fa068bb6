"""detectron2 augmentations: on-the-fly low-light synthesis and classic enhancement."""

from typing import Optional

import numpy as np
from detectron2.data import transforms as T
from fvcore.transforms.transform import NoOpTransform, Transform

from ..enhancement import ENHANCERS, enhance
from ..synthesis import LowLightParams, LowLightSynthesizer

_SUPPORTED_FORMATS = ("BGR", "RGB")


def _to_rgb(image: np.ndarray, image_format: str) -> np.ndarray:
    return image[:, :, ::-1] if image_format == "BGR" else image


def _check_format(image_format: str) -> str:
    if image_format not in _SUPPORTED_FORMATS:
        raise ValueError(f"low-light transforms need INPUT.FORMAT in {_SUPPORTED_FORMATS}")
    return image_format


class _PhotometricTransform(Transform):
    """A transform that changes pixel values only: boxes, polygons and masks pass through."""

    def apply_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB -> HxWx3 uint8 RGB."""
        raise NotImplementedError

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(_to_rgb(img, self.image_format))
        return np.ascontiguousarray(_to_rgb(self.apply_rgb(rgb), self.image_format))

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return segmentation

    def inverse(self) -> Transform:
        return NoOpTransform()


class LowLightTransform(_PhotometricTransform):
    """Applies the low-light synthesis with fixed parameters; geometry is unchanged."""

    def __init__(self, synthesizer: LowLightSynthesizer, params: LowLightParams, noise_seed: int,
                 image_format: str = "BGR"):  # fmt: skip
        super().__init__()
        self._set_attributes(locals())
        _check_format(image_format)

    def apply_rgb(self, rgb: np.ndarray) -> np.ndarray:
        return self.synthesizer.synthesize(rgb, self.params, np.random.default_rng(self.noise_seed))


class RandomLowLight(T.Augmentation):
    """Synthesises a low-light version of the image with fresh parameters and noise each call.

    Draws come from numpy's global generator, which detectron2 seeds per data-loader worker, so
    every epoch sees new noise while a seeded run stays reproducible.
    """

    def __init__(self, synthesizer: LowLightSynthesizer, prob: float = 1.0,
                 image_format: str = "BGR"):  # fmt: skip
        super().__init__()
        self._init(locals())
        _check_format(image_format)

    def get_transform(self, image: np.ndarray) -> Transform:
        if np.random.rand() >= self.prob:
            return NoOpTransform()
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        params = self.synthesizer.sample_params(rng)
        return LowLightTransform(
            self.synthesizer, params, int(rng.integers(2**31 - 1)), self.image_format
        )


class EnhanceTransform(_PhotometricTransform):
    """A classic enhancer (gamma correction / CLAHE) on the image; geometry is unchanged."""

    def __init__(self, method: str, gamma: float = 2.2, clip_limit: float = 2.0,
                 tile_grid: int = 8, image_format: str = "BGR"):  # fmt: skip
        super().__init__()
        if method not in ENHANCERS:
            raise ValueError(f"unknown enhancer {method!r}; expected one of {ENHANCERS}")
        self._set_attributes(locals())
        _check_format(image_format)

    def apply_rgb(self, rgb: np.ndarray) -> np.ndarray:
        return enhance(rgb, self.method, self.gamma, self.clip_limit, self.tile_grid)


class Enhance(T.Augmentation):
    """Deterministic augmentation wrapping :class:`EnhanceTransform` (train and test)."""

    def __init__(self, method: str, gamma: float = 2.2, clip_limit: float = 2.0,
                 tile_grid: int = 8, image_format: str = "BGR"):  # fmt: skip
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Optional[Transform]:
        return EnhanceTransform(
            self.method, self.gamma, self.clip_limit, self.tile_grid, self.image_format
        )
