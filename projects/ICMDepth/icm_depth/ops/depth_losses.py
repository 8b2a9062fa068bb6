"""The scale-invariant log loss SI_log (Eigen et al.) with iDisc's constants, plain torch."""

import torch


def silog_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    variance_focus: float = 0.85,
    eps: float = 1e-6,
) -> torch.Tensor:
    """``sqrt(var(g) + (1 - lambda) mean(g)^2 + eps)`` per image, averaged over images.

    ``g = log(pred + eps) - log(target + eps)`` over each image's valid pixels; the variance is
    the population variance. The mean runs over the images with at least one valid pixel (an
    image without any is left out, not counted as 0); 0 when there is none. The target receives
    no gradient.

    Args:
        pred: (B, H, W) positive predicted depth.
        target: (B, H, W) GT depth.
        valid: (B, H, W) bool.
        variance_focus: lambda (0.85 gives iDisc's 0.15 * mean^2).

    Returns:
        scalar, float32 for half / bfloat16 predictions.
    """
    # Log differences and their variance need float32's mantissa, also under autocast.
    with torch.autocast(pred.device.type, enabled=False):
        pred = pred.to(torch.promote_types(pred.dtype, torch.float32))
        v = valid.to(pred.dtype).flatten(1)
        target = target.detach().to(pred.dtype)
        g = (torch.log(pred + eps) - torch.log(target.clamp_min(0) + eps)).flatten(1) * v
        count = v.sum(1)
        n = count.clamp(min=1)
        mean = g.sum(1) / n
        var = ((g - mean[:, None]) ** 2 * v).sum(1) / n
        per_image = torch.sqrt(var + (1.0 - variance_focus) * mean**2 + eps)
        contributes = (count > 0).to(pred.dtype)
        return (per_image * contributes).sum() / contributes.sum().clamp(min=1)
