"""Synthetic clouds and missing data for overhead images, batched over views (plain torch).

Follows the authors' synthesis (see the project README): a cloud is an elliptic alpha map with a
radial profile and a Perlin-noise fringe, blurred and blended with a cloud texture; missing data
zeroes one side of a random line (a corner triangle, or a half-plane for large areas).
"""

import math
from typing import Dict, Optional

import torch

from .noise import fractal_noise, gaussian_blur, perlin_noise

__all__ = [
    "ARTIFACT_NONE",
    "ARTIFACT_CLOUD",
    "ARTIFACT_OCCLUSION",
    "ARTIFACT_NAMES",
    "cloud_profile",
    "cloud_alpha_masks",
    "render_cloud_alpha",
    "sample_cloud_boxes",
    "occlusion_masks",
    "procedural_cloud_textures",
    "apply_artifacts",
]

ARTIFACT_NONE, ARTIFACT_CLOUD, ARTIFACT_OCCLUSION = 0, 1, 2
ARTIFACT_NAMES = {"none": ARTIFACT_NONE, "cloud": ARTIFACT_CLOUD, "occlusion": ARTIFACT_OCCLUSION}

# Triangles cannot cover more than half of the image; beyond this area a half-plane is cut.
_TRIANGLE_MAX_AREA = 0.51


def _rand(shape, generator, device):
    return torch.rand(shape, generator=generator, device=device)


def cloud_profile(r: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The authors' radial alpha profile.

    1 for r < 0.5, linear to 0.8 at r = 0.6, 0.8 up to r = 0.65, then
    ``0.8 * (1 - (r - 0.65) / 0.35) * noise`` down to 0 at r = 1.

    Args:
        r: (...) normalised radius (1 on the cloud box's border).
        noise: (...) fringe modulation in [0, 1].
    """
    ramp = 1.0 - 2.0 * (r - 0.5)
    fringe = 0.8 * (1.0 - (r - 0.65) / 0.35) * noise
    alpha = torch.where(r < 0.5, torch.ones_like(r), ramp)
    alpha = torch.where(r >= 0.6, torch.full_like(r, 0.8), alpha)
    alpha = torch.where(r >= 0.65, fringe, alpha)
    return alpha.clamp(0.0, 1.0)


def sample_cloud_boxes(
    area_fraction: torch.Tensor,
    height: int,
    width: int,
    generator: Optional[torch.Generator] = None,
) -> Dict[str, torch.Tensor]:
    """Random cloud boxes: area ``area_fraction`` of the image, aspect U(0.5, 2), uniformly random
    centre, rotation U(-45, 45) degrees plus a random multiple of 90 (which also covers the
    authors' random flips / rot90).

    Args:
        area_fraction: (n,) box area / image area.

    Returns:
        dict of (n,) tensors: "cx", "cy" (pixels), "half_w", "half_h" (pixels), "angle" (radians).
    """
    device = area_fraction.device
    n = area_fraction.shape[0]
    aspect = 0.5 + 1.5 * _rand(n, generator, device)
    area = area_fraction.float() * height * width
    quarter_turns = torch.randint(0, 4, (n,), generator=generator, device=device)
    tilt = math.radians(45) * (2 * _rand(n, generator, device) - 1)
    return {
        "cx": width * _rand(n, generator, device),
        "cy": height * _rand(n, generator, device),
        "half_w": 0.5 * torch.sqrt(area * aspect).clamp_min(1e-3),
        "half_h": 0.5 * torch.sqrt(area / aspect).clamp_min(1e-3),
        "angle": math.radians(90) * quarter_turns + tilt,
    }


def render_cloud_alpha(
    boxes: Dict[str, torch.Tensor], noise: torch.Tensor, blur_sigma: float = 5.0
) -> torch.Tensor:
    """Alpha maps of cloud boxes.

    Args:
        boxes: as returned by :func:`sample_cloud_boxes`.
        noise: (n, H, W) fringe modulation in [0, 1].
        blur_sigma: Gaussian blur in pixels.

    Returns:
        (n, 1, H, W) alpha in [0, 1].
    """
    _, height, width = noise.shape
    device = noise.device

    def col(key):
        return boxes[key].view(-1, 1, 1)

    ys = torch.arange(height, device=device, dtype=torch.float32).view(1, -1, 1) + 0.5
    xs = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, -1) + 0.5
    dx, dy = xs - col("cx"), ys - col("cy")
    cos, sin = torch.cos(col("angle")), torch.sin(col("angle"))
    u = (cos * dx + sin * dy) / col("half_w")
    v = (-sin * dx + cos * dy) / col("half_h")
    alpha = cloud_profile(torch.sqrt(u * u + v * v), noise)
    return gaussian_blur(alpha.unsqueeze(1), blur_sigma).clamp(0.0, 1.0)


def cloud_alpha_masks(
    area_fraction: torch.Tensor,
    height: int,
    width: int,
    blur_sigma: float = 5.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Random cloud opacity maps, one per entry of ``area_fraction``.

    The fringe is modulated by ``clip(perlin + 1, 0, 1)`` on a 5 x 5 lattice.

    Args:
        area_fraction: (n,) box area / image area.
        blur_sigma: Gaussian blur of the alpha map, in pixels.

    Returns:
        (n, 1, height, width) alpha in [0, 1].
    """
    boxes = sample_cloud_boxes(area_fraction, height, width, generator)
    n, device = area_fraction.shape[0], area_fraction.device
    noise = (perlin_noise(n, height, width, 5, generator, device) + 1.0).clamp(0.0, 1.0)
    return render_cloud_alpha(boxes, noise, blur_sigma)


def occlusion_masks(
    area_fraction: torch.Tensor,
    height: int,
    width: int,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Random missing-data masks: one side of a random line is lost.

    Up to an area of 0.51 the lost side is a corner triangle (random corner, legs with product
    ``2 * area``); above, a horizontal or vertical split at ``area`` from a random side.

    Args:
        area_fraction: (n,) lost area / image area, in [0, 1].

    Returns:
        (n, 1, height, width) float mask, 1 where data is missing.
    """
    device = area_fraction.device
    n = area_fraction.shape[0]
    a = area_fraction.float().clamp(0.0, 1.0)
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    flip_x = _rand(n, generator, device) < 0.5
    flip_y = _rand(n, generator, device) < 0.5
    u = torch.where(flip_x.view(-1, 1, 1), 1 - xs.view(1, 1, -1), xs.view(1, 1, -1))
    v = torch.where(flip_y.view(-1, 1, 1), 1 - ys.view(1, -1, 1), ys.view(1, -1, 1))
    u, v = u.expand(n, height, width), v.expand(n, height, width)

    two_a = (2 * a).clamp(max=1.0)
    leg_x = two_a + (1 - two_a) * _rand(n, generator, device)  # in [2a, 1], so leg_y <= 1
    leg_y = two_a / leg_x.clamp_min(1e-6)
    triangle = (u / leg_x.view(-1, 1, 1) + v / leg_y.clamp_min(1e-6).view(-1, 1, 1)) <= 1
    vertical = (_rand(n, generator, device) < 0.5).view(-1, 1, 1)
    split = torch.where(vertical, u, v) <= a.view(-1, 1, 1)
    lost = torch.where((a <= _TRIANGLE_MAX_AREA).view(-1, 1, 1), triangle, split)
    lost = lost & (a > 0).view(-1, 1, 1)
    return lost.unsqueeze(1).float()


def procedural_cloud_textures(
    n: int, height: int, width: int, generator: Optional[torch.Generator] = None, device=None
) -> torch.Tensor:
    """Bright, slightly bluish fractal-noise clouds, a stand-in for cloud photographs.

    Returns:
        (n, 3, height, width) in [0, 1].
    """
    fbm = fractal_noise(n, height, width, 2, 5, 0.5, generator, device)
    brightness = (0.82 + 0.35 * fbm).clamp(0.0, 1.0).unsqueeze(1)
    tint = torch.tensor([0.96, 0.97, 1.0], device=brightness.device).view(1, 3, 1, 1)
    return brightness * tint


def apply_artifacts(
    images: torch.Tensor,
    kinds: torch.Tensor,
    area_fraction: torch.Tensor,
    cloud_textures: Optional[torch.Tensor] = None,
    blur_sigma: float = 5.0,
    generator: Optional[torch.Generator] = None,
):
    """Corrupts every image with the artifact named by ``kinds``.

    Args:
        images: (n, 3, H, W) clean views in [0, 1].
        kinds: (n,) int64, ARTIFACT_NONE / ARTIFACT_CLOUD / ARTIFACT_OCCLUSION.
        area_fraction: (n,) artifact area / image area.
        cloud_textures: optional (n, 3, H, W) cloud images (rows of non-cloud views unused);
            procedural clouds when None.
        blur_sigma: cloud alpha blur in pixels.

    Returns:
        corrupted: (n, 3, H, W); artifact: (n, 1, H, W) in [0, 1], how much of each pixel was
        replaced (cloud alpha, or 1 where data is missing).
    """
    n, _, height, width = images.shape
    device = images.device
    artifact = images.new_zeros(n, 1, height, width)
    corrupted = images.clone()
    cloud_idx = torch.nonzero(kinds == ARTIFACT_CLOUD).flatten()
    occl_idx = torch.nonzero(kinds == ARTIFACT_OCCLUSION).flatten()
    if len(cloud_idx):
        alpha = cloud_alpha_masks(area_fraction[cloud_idx], height, width, blur_sigma, generator)
        if cloud_textures is None:
            texture = procedural_cloud_textures(len(cloud_idx), height, width, generator, device)
        else:
            texture = cloud_textures[cloud_idx].to(images.dtype)
        clean = images[cloud_idx]
        corrupted[cloud_idx] = alpha * texture + (1 - alpha) * clean
        artifact[cloud_idx] = alpha
    if len(occl_idx):
        lost = occlusion_masks(area_fraction[occl_idx], height, width, generator)
        corrupted[occl_idx] = images[occl_idx] * (1 - lost)
        artifact[occl_idx] = lost
    return corrupted, artifact
