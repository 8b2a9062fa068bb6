"""Camera response functions (CRFs) for the low-light synthesis, as lookup tables.

The DoRF database (Grossberg & Nayar) holds 201 measured curves ``B = f(I)`` sampled at 1024
irradiance values in [0, 1] (``201_CRF_data.mat``, keys ``I`` and ``B``). Users supply the file;
without it a parametric gamma family stands in (see :meth:`CameraResponses.parametric`).
"""

import logging
import os
from functools import lru_cache
from typing import Optional

import numpy as np

logger = logging.getLogger(__name__)

DORF_FILENAME = "201_CRF_data.mat"
CRF_PATH_ENV = "LOWLIGHT_NL_CRF"
# Irradiance is carried between the noise and the forward response as 16-bit codes.
IRRADIANCE_LEVELS = 65536


class CameraResponses:
    """A bank of monotone camera response curves ``B = f_k(I)`` on [0, 1].

    Args:
        irradiance: (K, S) increasing irradiance samples of each curve.
        brightness: (K, S) non-decreasing brightness samples ``f_k(irradiance)``.
        source: where the curves come from (for logs and reports).
    """

    def __init__(self, irradiance: np.ndarray, brightness: np.ndarray, source: str):
        irradiance = np.asarray(irradiance, dtype=np.float64)
        brightness = np.asarray(brightness, dtype=np.float64)
        if irradiance.shape != brightness.shape or irradiance.ndim != 2:
            raise ValueError(
                f"{source}: irradiance {irradiance.shape} and brightness {brightness.shape} must "
                "be two (K, S) arrays"
            )
        if np.any(np.diff(irradiance, axis=1) <= 0) or np.any(np.diff(brightness, axis=1) < 0):
            raise ValueError(f"{source}: camera response curves must be monotone increasing")
        self.irradiance = irradiance
        self.brightness = brightness
        self.source = source
        self._forward_luts = {}

    @property
    def num_curves(self) -> int:
        return self.irradiance.shape[0]

    @classmethod
    def from_dorf(cls, path: str) -> "CameraResponses":
        """Reads DoRF's ``201_CRF_data.mat`` (a file, or the folder holding it)."""
        from scipy.io import loadmat

        if os.path.isdir(path):
            path = os.path.join(path, DORF_FILENAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"camera response file {path} does not exist")
        try:
            data = loadmat(path)
        except Exception as e:  # scipy raises several types for corrupt files
            raise ValueError(f"{path}: not a readable MATLAB file ({e})") from e
        if "I" not in data or "B" not in data:
            raise ValueError(f"{path}: expected DoRF keys 'I' and 'B', found {sorted(data)}")
        return cls(data["I"], data["B"], source=path)

    @classmethod
    def parametric(cls, num_curves: int = 201, samples: int = 1024) -> "CameraResponses":
        """Gamma curves ``B = I^(1/g)``, ``g`` evenly spaced in [1.6, 2.8].

        This brackets the typical DoRF curve (close to ``I^(1/2.2)``) but lacks the DoRF toe and
        shoulder shapes; use the real curves for datasets that are to be compared with the paper.
        """
        irradiance = np.linspace(0.0, 1.0, samples)
        gammas = np.linspace(1.6, 2.8, num_curves)[:, None]
        brightness = irradiance[None, :] ** (1.0 / gammas)
        return cls(np.broadcast_to(irradiance, brightness.shape), brightness, source="parametric")

    def forward(self, index: int, irradiance: np.ndarray) -> np.ndarray:
        """Brightness ``f_k(I)`` of curve ``index`` (float array in [0, 1], any shape)."""
        return np.interp(irradiance, self.irradiance[index], self.brightness[index])

    def inverse(self, index: int, brightness: np.ndarray) -> np.ndarray:
        """Irradiance ``f_k^-1(B)`` of curve ``index`` (float array in [0, 1], any shape)."""
        b = self.brightness[index]
        # Flat stretches of a measured curve make the inverse set-valued: use their midpoints.
        b_unique, first = np.unique(b, return_index=True)
        last = np.append(first[1:] - 1, len(b) - 1)
        i_mid = 0.5 * (self.irradiance[index][first] + self.irradiance[index][last])
        return np.interp(brightness, b_unique, i_mid)

    def forward_lut_uint8(self, index: int) -> np.ndarray:
        """(IRRADIANCE_LEVELS,) uint8 table: 16-bit irradiance code -> quantised brightness."""
        lut = self._forward_luts.get(index)
        if lut is None:
            codes = np.arange(IRRADIANCE_LEVELS) / (IRRADIANCE_LEVELS - 1)
            lut = np.rint(np.clip(self.forward(index, codes), 0, 1) * 255).astype(np.uint8)
            self._forward_luts[index] = lut
        return lut


def load_camera_responses(path: Optional[str] = None) -> CameraResponses:
    """The DoRF curves from ``path`` (or ``$LOWLIGHT_NL_CRF``); the parametric family otherwise.

    The fallback is announced once per process with a warning.
    """
    path = path or os.environ.get(CRF_PATH_ENV) or None
    if path:
        return _cached_dorf(os.path.abspath(path))
    return _cached_parametric()


@lru_cache(maxsize=4)
def _cached_dorf(path: str) -> CameraResponses:
    return CameraResponses.from_dorf(path)


@lru_cache(maxsize=1)
def _cached_parametric() -> CameraResponses:
    logger.warning(
        "No DoRF camera response curves given (set LOWLIGHT_NL_CRF or pass the path of %s): "
        "using the parametric gamma family B = I^(1/g), g in [1.6, 2.8].",
        DORF_FILENAME,
    )
    return CameraResponses.parametric()
