"""SRIE: the weighted variational model of Fu, Zeng, Huang, Zhang and Ding (CVPR 2016).

In the log domain (``s = log S``, ``r = log R``, ``l = log L``, ``S = R * L``)::

    min_{r, l} ||r + l - s||^2 + c1 ||R * grad r||_1 + c2 ||L * grad l||^2,  r <= 0, l >= s

The weights ``R = exp(r)`` and ``L = exp(l)`` (from the previous iterate) turn the log-domain
gradients back into linear-domain ones (``grad R ~ R grad r``), which keeps dark regions from
dominating. Alternating minimisation: the r-problem by split Bregman (``d = R grad r``, shrinkage,
one sparse solve), the l-problem by one sparse solve, each followed by its constraint; stop when
both relative changes fall below ``tol``. Enhancement (the illumination adjustment of the paper):
``S' = R * W (L / W)^(1 / gamma)`` with ``W = 255`` and ``gamma = 2.2``; S and L are on the
0-255 scale, R on (0, 1]. Colour images are
processed on the HSV value channel, hue and saturation kept.
"""

from typing import Tuple

import cv2
import numpy as np

from ._sparse import forward_differences, gradients, weighted_smooth


def _shrink(x: np.ndarray, tau: float) -> np.ndarray:
    return np.sign(x) * np.maximum(np.abs(x) - tau, 0.0)


def srie_decompose(
    value: np.ndarray,
    c1: float = 0.01,
    c2: float = 0.1,
    lam: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-3,
    scale: float = 255.0,
) -> Tuple[np.ndarray, np.ndarray, int]:
    """Reflectance and illumination of a single-channel image.

    Args:
        value: (H, W) in [0, 1] (the HSV value channel of a colour image).
        c1, c2: weights of the reflectance (weighted TV) and illumination (weighted quadratic)
            regularisers; ``lam`` the split-Bregman penalty.
        scale: the intensity scale of S and L (255: 8-bit levels, as the weights ``L`` of the
            illumination term assume; R stays in (0, 1]).

    Returns:
        (R, L, iterations): R in (0, 1], L >= S (both on ``scale``), (H, W) float64, with
        ``R * L ~ S``.
    """
    s = np.log(np.clip(value.astype(np.float64), 0.5 / scale, 1.0) * scale)
    h, w = s.shape
    d_h, d_v = forward_differences(h, w)
    r, l = np.zeros_like(s), s.copy()
    b = [np.zeros_like(s), np.zeros_like(s)]
    iterations = 0
    for iterations in range(1, max_iter + 1):
        r_prev, l_prev = r, l
        weight_r, weight_l = np.exp(r), np.exp(l)
        # r-problem: min ||r - (s - l)||^2 + c1 ||d||_1 + c1 lam ||d - W_r grad r - b||^2.
        d = [_shrink(weight_r * g + bb, 1.0 / (2.0 * lam)) for g, bb in zip(gradients(r), b)]
        rhs = sum(
            op.T @ (weight_r * (dd - bb)).ravel() for op, dd, bb in zip((d_h, d_v), d, b)
        ).reshape(h, w)
        quad = c1 * lam * weight_r**2
        r = np.minimum(
            weighted_smooth(s - l, quad, quad, c1 * lam * rhs, x0=r, method="cg", rtol=1e-6), 0.0
        )
        b = [bb + weight_r * g - dd for bb, g, dd in zip(b, gradients(r), d)]
        # l-problem: min ||l - (s - r)||^2 + c2 ||W_l grad l||^2.
        quad = c2 * weight_l**2
        l = np.maximum(weighted_smooth(s - r, quad, quad, x0=l, method="cg", rtol=1e-6), s)
        change_r = np.linalg.norm(r - r_prev) / max(np.linalg.norm(r_prev), 1e-12)
        change_l = np.linalg.norm(l - l_prev) / max(np.linalg.norm(l_prev), 1e-12)
        if iterations > 1 and change_r <= tol and change_l <= tol:
            break
    return np.exp(r), np.exp(l), iterations


def srie_enhance(
    image: np.ndarray, gamma: float = 2.2, scale: float = 255.0, **kwargs
) -> np.ndarray:
    """SRIE enhancement of an RGB image on its HSV value channel.

    Args:
        image: (H, W, 3) RGB in [0, 1].
        gamma: illumination gamma (2.2): ``V' = R * W (L / W)^(1 / gamma)``, ``W = scale``.
        kwargs: ``srie_decompose`` parameters.

    Returns:
        (H, W, 3) float64 RGB in [0, 1].
    """
    hsv = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2HSV)
    reflectance, illumination, _ = srie_decompose(hsv[..., 2], scale=scale, **kwargs)
    adjusted = np.clip(illumination / scale, 0.0, 1.0) ** (1.0 / gamma)
    hsv[..., 2] = np.clip(reflectance * adjusted, 0.0, 1.0)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float64), 0.0, 1.0)
