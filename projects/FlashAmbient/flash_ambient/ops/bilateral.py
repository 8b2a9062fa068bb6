"""Batched bilateral filters for the DeepFlash input: OpenCV's and the authors' variant."""

import torch
import torch.nn.functional as F

_FLOOR_TOLERANCE = 1e-6


def bilateral_filter(
    images: torch.Tensor, diameter: int = 7, sigma_space: float = 7.0, sigma_range: float = 102.0
) -> torch.Tensor:
    """Edge-preserving smoothing: ``cv2.bilateralFilter(img, diameter, sigma_range, sigma_space)``.

    Follows OpenCV: a disc-shaped window of radius ``diameter // 2``, spatial weight
    ``exp(-r^2 / (2 sigma_space^2))``, range weight ``exp(-d^2 / (2 sigma_range^2))`` with ``d`` the
    sum over channels of absolute differences, reflect-101 borders.

    Args:
        images: (N, C, H, W) with values on the 0-255 scale (``sigma_range`` is in those units).

    Returns:
        (N, C, H, W) filtered images (float, not rounded), in the input dtype; computed in at least
        float32 (half precision cannot hold squared 0-255 colour distances).
    """
    dtype = images.dtype
    images = images.to(torch.promote_types(dtype, torch.float32))
    n, c, h, w = images.shape
    radius = diameter // 2
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    dist2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    inside = dist2 <= radius * radius
    space_w = torch.exp(-dist2[inside] / (2.0 * sigma_space**2))  # (K,)
    padded = F.pad(images, (radius,) * 4, mode="reflect")
    patches = F.unfold(padded, kernel_size=2 * radius + 1).view(n, c, (2 * radius + 1) ** 2, h, w)
    patches = patches[:, :, inside.flatten()]  # (N, C, K, H, W)
    color_dist = (patches - images[:, :, None]).abs().sum(dim=1, keepdim=True)
    weights = space_w.view(1, 1, -1, 1, 1) * torch.exp(-(color_dist**2) / (2.0 * sigma_range**2))
    return ((patches * weights).sum(dim=2) / weights.sum(dim=2)).to(dtype)


def bilateral_filter_authors(
    images: torch.Tensor, diameter: int = 7, sigma_space: float = 7.0, sigma_range: float = 102.0
) -> torch.Tensor:
    """The bilateral filter of the authors' DeepFlash re-implementation.

    Unlike OpenCV's: a square ``diameter`` x ``diameter`` window, each channel filtered on its
    own (range weight ``exp(-(I_c(q) - I_c(p))^2 / (2 sigma_range^2))`` per channel), pixels
    outside the image taken as 0 (zero padding, which darkens the borders), and the result
    truncated to integers as a uint8 cast does. Spatial weight ``exp(-r^2 / (2 sigma_space^2))``.

    Args:
        images: (N, C, H, W) with values on the 0-255 scale.

    Returns:
        (N, C, H, W) integer-valued filtered images (floor of the weighted mean, in 0..255), in
        the input dtype. Computed in float64 and floored with a 1e-6 tolerance, so that a mean
        that is an exact integer (a flat region) stays that integer whatever the summation order.
    """
    dtype = images.dtype
    images = images.to(torch.float64)
    n, c, h, w = images.shape
    radius = diameter // 2
    side = 2 * radius + 1
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    dist2 = (offsets[:, None] ** 2 + offsets[None, :] ** 2).flatten()
    space_w = torch.exp(-dist2 / (2.0 * sigma_space**2)).view(1, 1, -1, 1, 1)
    padded = F.pad(images, (radius,) * 4, mode="constant", value=0.0)
    patches = F.unfold(padded, kernel_size=side).view(n, c, side * side, h, w)
    diff2 = (patches - images[:, :, None]) ** 2
    weights = space_w * torch.exp(-diff2 / (2.0 * sigma_range**2))
    out = (patches * weights).sum(dim=2) / weights.sum(dim=2)
    return (out + _FLOOR_TOLERANCE).floor().clamp(0.0, 255.0).to(dtype)
