"""Batched 2D Perlin and fractal noise, and a separable Gaussian blur (plain torch)."""

import math
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["perlin_from_gradients", "perlin_noise", "fractal_noise", "gaussian_blur"]


def _fade(t: torch.Tensor) -> torch.Tensor:
    return t * t * t * (t * (t * 6 - 15) + 10)


def perlin_from_gradients(grads: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Perlin noise of given lattice gradients.

    Args:
        grads: (n, res + 1, res + 1, 2) unit gradients (x, y) on the lattice corners.

    Returns:
        (n, height, width) float32; pixel (y, x) sits at lattice coordinate
        (y * res / height, x * res / width).
    """
    res = grads.shape[1] - 1
    device = grads.device
    ys = torch.arange(height, device=device, dtype=torch.float32) * (res / height)
    xs = torch.arange(width, device=device, dtype=torch.float32) * (res / width)
    y0, x0 = ys.floor().long(), xs.floor().long()
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]  # (H, 1), (1, W)

    def corner(dy: int, dx: int) -> torch.Tensor:
        g = grads[:, (y0 + dy)[:, None], (x0 + dx)[None, :]]  # (n, H, W, 2)
        return g[..., 0] * (fx - dx) + g[..., 1] * (fy - dy)

    u, v = _fade(fx), _fade(fy)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return top * (1 - v) + bottom * v


def perlin_noise(
    n: int,
    height: int,
    width: int,
    res: int = 5,
    generator: Optional[torch.Generator] = None,
    device=None,
) -> torch.Tensor:
    """``n`` independent Perlin noise maps over a ``res`` x ``res`` lattice of random gradients.

    Returns:
        (n, height, width) float32, values within about [-0.71, 0.71] (zero on lattice points).
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    angles = 2 * math.pi * torch.rand(n, res + 1, res + 1, generator=generator, device=device)
    grads = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    return perlin_from_gradients(grads, height, width)


def fractal_noise(
    n: int,
    height: int,
    width: int,
    res: int = 2,
    octaves: int = 5,
    persistence: float = 0.5,
    generator: Optional[torch.Generator] = None,
    device=None,
) -> torch.Tensor:
    """Sum of Perlin octaves (lattice ``res * 2**k``, amplitude ``persistence**k``).

    Returns:
        (n, height, width) float32, normalised by the total amplitude (within about [-0.71, 0.71]).
    """
    total = torch.zeros(n, height, width, device=device)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        lattice = res * 2**octave
        total += amplitude * perlin_noise(n, height, width, lattice, generator, device)
        norm += amplitude
        amplitude *= persistence
    return total / norm


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with zero padding, kernel truncated at 3 sigma.

    Args:
        images: (N, C, H, W).
        sigma: standard deviation in pixels; <= 0 returns the input.

    Returns:
        (N, C, H, W).
    """
    if sigma <= 0:
        return images
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    kx = kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    out = F.conv2d(images, kx, padding=(0, radius), groups=c)
    return F.conv2d(out, ky, padding=(radius, 0), groups=c)
