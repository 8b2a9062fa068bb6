"""The four non-reference losses of Zero-DCE / Zero-DCE++ (``Myloss.py`` of the release).

Weights are those of the release's Zero-DCE++ training script (``lowlight_train.py``):
``1600 L_tvA + L_spa + 5 L_col + 10 L_exp`` with the well-exposedness level E = 0.6.
"""

from typing import Dict

import torch
import torch.nn.functional as F

EXPOSURE_LEVEL = 0.6  # E in the paper
SPATIAL_PATCH = 4  # side of the regions of L_spa
EXPOSURE_PATCH = 16  # side of the regions of L_exp
LOSS_WEIGHTS = {"loss_spa": 1.0, "loss_exp": 10.0, "loss_col": 5.0, "loss_tv": 1600.0}
# L_col takes a square root of a sum of fourth powers that is exactly 0 for a grey image; its
# gradient there would be 0 * inf = NaN. Below this the root is held constant (value 1e-12).
_COLOR_EPS = 1e-24


def _neighbour_differences(p: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w) -> (4, B, 1, h, w): p minus its left / right / upper / lower neighbour, with
    zeros outside the map (the release's 3x3 difference kernels with zero padding)."""
    padded = F.pad(p, (1, 1, 1, 1))
    h, w = p.shape[-2:]
    left = padded[..., 1 : h + 1, 0:w]
    right = padded[..., 1 : h + 1, 2 : w + 2]
    up = padded[..., 0:h, 1 : w + 1]
    down = padded[..., 2 : h + 2, 1 : w + 1]
    return torch.stack([p - left, p - right, p - up, p - down])


def spatial_consistency_loss(inp: torch.Tensor, enhanced: torch.Tensor,
                             patch: int = SPATIAL_PATCH) -> torch.Tensor:  # fmt: skip
    """L_spa: the differences of each 4x4 region's mean luminance to its 4 neighbours should be
    the same in the enhanced image as in the input.

    Args:
        inp, enhanced: (B, 3, H, W).

    Returns:
        scalar: mean over regions of the sum over the 4 directions of the squared change.
    """
    p_in = F.avg_pool2d(inp.mean(1, keepdim=True), patch)
    p_en = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)
    d = _neighbour_differences(p_in) - _neighbour_differences(p_en)
    return d.pow(2).sum(0).mean()


def exposure_loss(enhanced: torch.Tensor, level: float = EXPOSURE_LEVEL,
                  patch: int = EXPOSURE_PATCH) -> torch.Tensor:  # fmt: skip
    """L_exp: mean squared distance of each 16x16 region's mean luminance to ``level``.

    Args:
        enhanced: (B, 3, H, W).
    """
    means = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)
    return (means - level).pow(2).mean()


def color_constancy_loss(enhanced: torch.Tensor) -> torch.Tensor:
    """L_col (release form): ``sqrt(D_rg^2 + D_rb^2 + D_gb^2)`` with ``D_pq = (J^p - J^q)^2``
    of the channel means J, averaged over the batch (grey-world assumption).

    Args:
        enhanced: (B, 3, H, W) RGB.
    """
    m = enhanced.mean((2, 3))
    r, g, b = m[:, 0], m[:, 1], m[:, 2]
    d_rg, d_rb, d_gb = (r - g).pow(2), (r - b).pow(2), (b - g).pow(2)
    total = d_rg.pow(2) + d_rb.pow(2) + d_gb.pow(2)
    return total.clamp_min(_COLOR_EPS).sqrt().mean()


def illumination_smoothness_loss(curves: torch.Tensor) -> torch.Tensor:
    """L_tvA: total variation of the curve maps, ``2 (sum dy^2 / ((H-1) W) + sum dx^2 /
    (H (W-1))) / B`` summed over channels (release form).

    Args:
        curves: (B, C, H, W) curve maps.
    """
    b, _, h, w = curves.shape
    dy = (curves[:, :, 1:, :] - curves[:, :, :-1, :]).pow(2).sum()
    dx = (curves[:, :, :, 1:] - curves[:, :, :, :-1]).pow(2).sum()
    return 2 * (dy / ((h - 1) * w) + dx / (h * (w - 1))) / b


def zero_dce_losses(inp: torch.Tensor, enhanced: torch.Tensor, curves: torch.Tensor,
                    exposure_level: float = EXPOSURE_LEVEL,
                    weights: Dict[str, float] = None) -> Dict[str, torch.Tensor]:  # fmt: skip
    """The weighted non-reference losses; their sum is the training objective.

    Args:
        inp: (B, 3, H, W) low-light input in [0, 1].
        enhanced: (B, 3, H, W) the network's output for it.
        curves: (B, 3, H, W) the curve map the network estimated.
        weights: per-loss weights, default :data:`LOSS_WEIGHTS`.

    Returns:
        ``{"loss_spa", "loss_exp", "loss_col", "loss_tv"}``: weighted scalars.
    """
    weights = dict(LOSS_WEIGHTS, **(weights or {}))
    raw = {
        "loss_spa": spatial_consistency_loss(inp, enhanced),
        "loss_exp": exposure_loss(enhanced, exposure_level),
        "loss_col": color_constancy_loss(enhanced),
        "loss_tv": illumination_smoothness_loss(curves),
    }
    return {k: weights[k] * v for k, v in raw.items()}
