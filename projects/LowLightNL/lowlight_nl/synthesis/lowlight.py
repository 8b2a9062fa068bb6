"""Lv et al.'s low-light synthesis (AGLLNet), vectorised.

Per image, with parameters drawn once (:class:`LowLightRanges`):

1. darken in sRGB: ``I_dark = beta * (alpha * I) ^ gamma`` on [0, 1];
2. inverse camera response ``f^-1`` (one of the DoRF curves) -> irradiance ``L``;
3. RGGB Bayer mosaic;
4. heteroscedastic noise ``N(0, L * sig_s^2 + sig_c^2)`` on the mosaic, clip to [0, 1];
5. bilinear demosaic;
6. forward camera response ``f``, quantised to uint8.

Steps 1-3 are elementwise on an 8-bit input, so they collapse into a 256-entry table per image
applied to the mosaicked codes; step 5 is OpenCV's Bayer conversion on 16-bit codes and step 6 a
65536-entry table. Nothing is truncated to 8 bits before the end.
"""

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Optional, Tuple

import cv2
import numpy as np

from .camera_response import IRRADIANCE_LEVELS, CameraResponses, load_camera_responses

_BAYER_RGGB_TO_RGB = getattr(cv2, "COLOR_BayerRGGB2RGB", cv2.COLOR_BayerBG2RGB)


@dataclass(frozen=True)
class LowLightParams:
    """The parameters of one synthesised image (symbols of Lv et al.)."""

    camera: int  # index of the camera response curve
    alpha: float
    beta: float
    gamma: float
    sig_s: float  # signal-dependent (shot) noise level
    sig_c: float  # signal-independent (read) noise level

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LowLightRanges:
    """Uniform sampling ranges of the parameters (defaults: the documented ranges)."""

    alpha: Tuple[float, float] = (0.9, 1.0)
    beta: Tuple[float, float] = (0.5, 1.0)
    gamma: Tuple[float, float] = (1.5, 5.0)
    sig_s: Tuple[float, float] = (0.0, 0.16)
    sig_c: Tuple[float, float] = (0.0, 0.06)

    def __post_init__(self):
        for f in fields(self):
            lo, hi = getattr(self, f.name)
            if not (0 <= lo <= hi):
                raise ValueError(f"range of {f.name} must satisfy 0 <= low <= high, got {lo, hi}")

    def sample(self, rng: np.random.Generator, num_cameras: int) -> LowLightParams:
        draws = {f.name: float(rng.uniform(*getattr(self, f.name))) for f in fields(self)}
        return LowLightParams(camera=int(rng.integers(num_cameras)), **draws)


def image_rng(seed: int, key) -> np.random.Generator:
    """A generator determined by ``seed`` and an image key (file name or id), platform-stable."""
    digest = hashlib.sha256(repr((int(seed), str(key))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def darken(levels: np.ndarray, params: LowLightParams) -> np.ndarray:
    """Step 1 on values in [0, 1]: ``beta * (alpha * I) ^ gamma``."""
    return params.beta * (params.alpha * levels) ** params.gamma


def noise_std(irradiance: np.ndarray, params: LowLightParams) -> np.ndarray:
    """Std of the noise model at irradiance ``L``: ``sqrt(L sig_s^2 + sig_c^2)``."""
    return np.sqrt(irradiance * params.sig_s**2 + params.sig_c**2)


def mosaic_rggb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W) RGGB Bayer mosaic (R at even rows / even columns)."""
    raw = np.empty(image.shape[:2], dtype=image.dtype)
    raw[0::2, 0::2] = image[0::2, 0::2, 0]
    raw[0::2, 1::2] = image[0::2, 1::2, 1]
    raw[1::2, 0::2] = image[1::2, 0::2, 1]
    raw[1::2, 1::2] = image[1::2, 1::2, 2]
    return raw


def demosaic_rggb(raw16: np.ndarray) -> np.ndarray:
    """(H, W) uint16 RGGB mosaic -> (H, W, 3) uint16 RGB, bilinear (OpenCV)."""
    return cv2.cvtColor(raw16, _BAYER_RGGB_TO_RGB)


class LowLightSynthesizer:
    """Turns 8-bit RGB images into synthetic low-light ones, reproducibly per image key.

    Args:
        camera_responses: the CRF bank (default: :func:`load_camera_responses`).
        ranges: parameter ranges (default: the documented ranges).
        seed: base seed; ``synthesizer(image, key=...)`` is a pure function of (seed, key, image).
    """

    def __init__(
        self,
        camera_responses: Optional[CameraResponses] = None,
        ranges: Optional[LowLightRanges] = None,
        seed: int = 0,
    ):
        self.crf = camera_responses if camera_responses is not None else load_camera_responses()
        self.ranges = ranges if ranges is not None else LowLightRanges()
        self.seed = seed

    def sample_params(self, rng: np.random.Generator) -> LowLightParams:
        return self.ranges.sample(rng, self.crf.num_curves)

    def __call__(self, image: np.ndarray, key=None, rng: Optional[np.random.Generator] = None):
        """Synthesises one image with freshly drawn parameters.

        Args:
            image: (H, W, 3) uint8 RGB (or (H, W) grey).
            key: image key (file name / id) seeding the draw; ignored when ``rng`` is given.
            rng: generator to draw from (default: ``image_rng(seed, key)``).

        Returns:
            (low-light image (H, W, 3) uint8 RGB, LowLightParams).
        """
        rng = rng if rng is not None else image_rng(self.seed, key)
        params = self.sample_params(rng)
        return self.synthesize(image, params, rng), params

    def synthesize(
        self, image: np.ndarray, params: LowLightParams, rng: np.random.Generator
    ) -> np.ndarray:
        """Applies the pipeline with given parameters; ``rng`` draws the noise.

        Args:
            image: (H, W, 3) uint8 RGB (or (H, W) grey).

        Returns:
            (H, W, 3) uint8 RGB.
        """
        image = _as_rgb_uint8(image)
        levels = np.arange(256, dtype=np.float64) / 255.0
        irradiance_of_code = self.crf.inverse(params.camera, darken(levels, params))
        raw = irradiance_of_code.astype(np.float32)[mosaic_rggb(image)]
        if params.sig_s > 0 or params.sig_c > 0:
            std = np.sqrt(raw * np.float32(params.sig_s**2) + np.float32(params.sig_c**2))
            raw += std * rng.standard_normal(raw.shape, dtype=np.float32)
        np.clip(raw, 0.0, 1.0, out=raw)
        raw16 = np.rint(raw * (IRRADIANCE_LEVELS - 1)).astype(np.uint16)
        return self.crf.forward_lut_uint8(params.camera)[demosaic_rggb(raw16)]


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"low-light synthesis expects a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"low-light synthesis expects an (H, W, 3) image, got {image.shape}")
    if min(image.shape[:2]) < 2:
        raise ValueError(f"image of shape {image.shape} is too small for a Bayer mosaic")
    return np.ascontiguousarray(image)
