"""The attention map of Eq. 1 and the attention-guided reconstruction term of Eqs. 2-3."""

import torch


def attention_map(ambient: torch.Tensor, flash: torch.Tensor) -> torch.Tensor:
    """``M = 1 - mean_c |I_a - I_f|`` (Eq. 1).

    Args:
        ambient, flash: (N, C, H, W) images in [0, 1].

    Returns:
        (N, 1, H, W) map in [0, 1]; 1 where the two images agree.
    """
    if ambient.shape != flash.shape:
        raise ValueError(
            f"attention_map: shapes differ, {tuple(ambient.shape)} vs {tuple(flash.shape)}"
        )
    return 1.0 - (ambient - flash).abs().mean(dim=1, keepdim=True)


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor = None):
    """``mean |target * M - prediction * M|``: R_M of Eq. 3 (plain L1 when ``mask`` is None).

    Args:
        prediction, target: (N, C, H, W).
        mask: (N, 1, H, W) or None.

    Returns:
        scalar tensor.
    """
    if mask is not None:
        prediction, target = prediction * mask, target * mask
    return (target - prediction).abs().mean()
