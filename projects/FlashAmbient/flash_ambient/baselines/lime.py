"""LIME: low-light enhancement via illumination map estimation (Guo, Li and Ling, TIP 2017).

The illumination map starts as the maximum over R, G and B (Eq. 3), is refined by the sped-up
solver of Sec. III-B with the structure-aware weights of strategy III, corrected by a gamma and
divides the image: ``R = L / T^gamma``. LIME's optional BM3D denoising step is not part of it.
"""

import numpy as np
from scipy.ndimage import gaussian_filter

from ._sparse import gradients, weighted_smooth


def lime_weights(t_hat: np.ndarray, sigma: float = 2.0, eps: float = 1e-3):
    """Strategy III: ``W_d(x) = sum_y G_sigma(x, y) / (|sum_y G_sigma(x, y) grad_d T^(y)| + eps)``.

    Args:
        t_hat: (H, W) initial illumination map.

    Returns:
        (W_h, W_v), (H, W) each: small across a consistent edge, large in flat regions.
    """
    weights = []
    for grad in gradients(t_hat):
        # The normalised Gaussian makes the numerator's window sum 1.
        weights.append(1.0 / (np.abs(gaussian_filter(grad, sigma, mode="nearest")) + eps))
    return tuple(weights)


def lime_illumination(
    image: np.ndarray, alpha: float = 0.15, sigma: float = 2.0, eps: float = 1e-3
) -> np.ndarray:
    """The refined illumination map T of an image.

    Solves the sped-up problem (Eq. 19): ``min_T ||T^ - T||^2 + alpha sum_x sum_d W_d(x)
    (grad_d T(x))^2 / (|grad_d T^(x)| + eps)``, i.e. the linear system
    ``(I + alpha sum_d D_d^T diag(W_d / (|grad_d T^| + eps)) D_d) t = t^``.

    Args:
        image: (H, W, 3) in [0, 1].

    Returns:
        (H, W) float64 illumination map.
    """
    t_hat = image.max(axis=2).astype(np.float64)
    w_h, w_v = lime_weights(t_hat, sigma, eps)
    g_h, g_v = gradients(t_hat)
    return weighted_smooth(
        t_hat, alpha * w_h / (np.abs(g_h) + eps), alpha * w_v / (np.abs(g_v) + eps)
    )


def lime_enhance(
    image: np.ndarray,
    alpha: float = 0.15,
    sigma: float = 2.0,
    gamma: float = 0.8,
    eps: float = 1e-3,
    t_min: float = 1e-3,
) -> np.ndarray:
    """LIME enhancement: ``L / max(T, t_min)^gamma`` per channel, clipped to [0, 1].

    Args:
        image: (H, W, 3) RGB in [0, 1].
        alpha, sigma, gamma: the paper's parameters (0.15, 2, 0.8).

    Returns:
        (H, W, 3) float64 in [0, 1].
    """
    t = lime_illumination(image, alpha, sigma, eps)
    t = np.clip(t, t_min, 1.0) ** gamma
    return np.clip(image / t[..., None], 0.0, 1.0)
