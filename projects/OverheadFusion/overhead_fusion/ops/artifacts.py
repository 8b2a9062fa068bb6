"""Synthetic clouds and missing data for overhead images, batched over views (plain torch).

Two synthesis modes (``INPUT.OVERHEAD_FUSION.ARTIFACT_MODE``):

* ``"authors"`` (default): the procedure of the authors' released code, which produced the
  paper's numbers. Every view gets the configured area ``a``.

  - Cloud: a box of area ``a`` (aspect U(0.5, 2), at most 298/300 of the image side) placed
    wholly inside the image; in it a square alpha template with the radial profile of
    :func:`cloud_profile`, whose fringe is modulated by ``clip(sqrt(2) * perlin + 1, 0, 1)``
    (5 x 5 lattice) and which is blurred before it is stretched to the box; then the whole alpha
    map is rotated about the image centre by U(-45, 45) degrees.
  - Missing data, ``a <= 0.51``: a corner triangle (random corner) with legs ``w``, ``h``,
    ``w = sqrt(2 a / aspect)``, ``h = a / w`` (sides of the image = 1, aspect U(0.5, 2), each leg
    at most 298/300), so it covers ``w h / 2``, about ``a / 2``.
  - Missing data, ``a > 0.51``: one side of a slanted line from a random offset ``h1`` in
    [1/2, 295/300) on one edge to ``h2 = min(2 a - h1, 298/300)`` on the opposite edge,
    horizontal or vertical, lost on a random side: exactly ``a`` unless ``h2`` is capped.

* ``"paper"``: the paper's wording, artifacts "up to" the configured area: every view draws its
  area from U(0, a); clouds as above with a box of that area; missing data is one side of a line
  of uniformly random direction, cut so that exactly that area is lost.
"""

import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F

from .noise import fractal_noise, gaussian_blur, perlin_noise

__all__ = [
    "ARTIFACT_NONE",
    "ARTIFACT_CLOUD",
    "ARTIFACT_OCCLUSION",
    "ARTIFACT_NAMES",
    "SYNTHESIS_MODES",
    "artifact_areas",
    "cloud_profile",
    "cloud_fringe_noise",
    "cloud_templates",
    "cloud_alpha_masks",
    "render_cloud_alpha",
    "sample_cloud_boxes",
    "occlusion_masks",
    "procedural_cloud_textures",
    "apply_artifacts",
]

ARTIFACT_NONE, ARTIFACT_CLOUD, ARTIFACT_OCCLUSION = 0, 1, 2
ARTIFACT_NAMES = {"none": ARTIFACT_NONE, "cloud": ARTIFACT_CLOUD, "occlusion": ARTIFACT_OCCLUSION}
SYNTHESIS_MODES = ("authors", "paper")

# The authors' constants, at their 300 px image side: corner triangles up to this area, a
# slanted line above; boxes and legs at most 298 px; line offsets in [150, 295) px.
_TRIANGLE_MAX_AREA = 0.51
_MAX_SIDE = 298 / 300
_LINE_OFFSET = (0.5, 295 / 300)
_PERLIN_LATTICE = 5
_MAX_TILT_DEG = 45.0


def _rand(shape, generator, device):
    return torch.rand(shape, generator=generator, device=device)


def _check_mode(mode: str) -> None:
    if mode not in SYNTHESIS_MODES:
        raise ValueError(f"artifact synthesis mode must be one of {SYNTHESIS_MODES}: {mode}")


def artifact_areas(
    area_fraction: torch.Tensor, mode: str = "authors", generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Nominal artifact area of every view: ``area_fraction`` itself ("authors"), or drawn from
    U(0, area_fraction) ("paper").

    Args:
        area_fraction: (n,) configured area / image area.

    Returns:
        (n,) float32.
    """
    _check_mode(mode)
    a = area_fraction.float()
    if mode == "paper":
        a = a * _rand(a.shape, generator, a.device)
    return a


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


def cloud_fringe_noise(
    n: int, height: int, width: int, generator: Optional[torch.Generator] = None, device=None
) -> torch.Tensor:
    """The authors' fringe modulation: ``clip(sqrt(2) * perlin + 1, 0, 1)``, 5 x 5 lattice.

    The sqrt(2) scales Perlin noise to about [-1, 1]; below 0.5 on about 5% of the pixels.

    Returns:
        (n, height, width) float32 in [0, 1].
    """
    perlin = perlin_noise(n, height, width, _PERLIN_LATTICE, generator, device)
    return (math.sqrt(2.0) * perlin + 1.0).clamp(0.0, 1.0)


def cloud_templates(
    n: int,
    size: int,
    blur_sigma: float,
    generator: Optional[torch.Generator] = None,
    device=None,
) -> torch.Tensor:
    """Square cloud alpha templates: the radial profile (radius 1 touching the square's sides)
    with a Perlin fringe, blurred with ``blur_sigma`` pixels of the template.

    Returns:
        (n, 1, size, size) in [0, 1].
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    noise = cloud_fringe_noise(n, size, size, generator, device)
    c = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
    r = torch.sqrt(c.view(-1, 1) ** 2 + c.view(1, -1) ** 2)
    alpha = cloud_profile(r.expand(n, size, size), noise)
    return gaussian_blur(alpha.unsqueeze(1), blur_sigma).clamp(0.0, 1.0)


def sample_cloud_boxes(
    area_fraction: torch.Tensor,
    height: int,
    width: int,
    generator: Optional[torch.Generator] = None,
) -> Dict[str, torch.Tensor]:
    """The authors' cloud placement: a box of area ``area_fraction`` (aspect h / w in U(0.5, 2),
    each side at most 298/300 of the image's) whose centre is uniform among the positions that
    keep it inside the image, and a rotation of the alpha map about the image centre by
    U(-45, 45) degrees.

    Args:
        area_fraction: (n,) box area / image area.

    Returns:
        dict of (n,) tensors: "cx", "cy", "half_w", "half_h" (pixels), "angle" (radians).
    """
    device = area_fraction.device
    n = area_fraction.shape[0]
    aspect = 0.5 + 1.5 * _rand(n, generator, device)
    area = area_fraction.float().clamp_min(0) * height * width
    box_w = torch.sqrt(area / aspect)
    box_h = area / box_w.clamp_min(1e-6)
    box_w = box_w.clamp(1e-3, _MAX_SIDE * width)
    box_h = box_h.clamp(1e-3, _MAX_SIDE * height)
    cx = box_w / 2 + (width - box_w) * _rand(n, generator, device)
    cy = box_h / 2 + (height - box_h) * _rand(n, generator, device)
    tilt = math.radians(_MAX_TILT_DEG) * (2 * _rand(n, generator, device) - 1)
    return {"cx": cx, "cy": cy, "half_w": box_w / 2, "half_h": box_h / 2, "angle": tilt}


def render_cloud_alpha(
    boxes: Dict[str, torch.Tensor], templates: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Stretches every template to its box, then rotates it about the image centre.

    Pixel (y, x), centre (x + 0.5, y + 0.5), is rotated back by ``-angle`` about the image centre
    and read from the template by bilinear interpolation (zero outside it).

    Args:
        boxes: as returned by :func:`sample_cloud_boxes`.
        templates: (n, 1, S, S) alpha templates.

    Returns:
        (n, 1, height, width) alpha in [0, 1].
    """
    device = templates.device

    def col(key):
        return boxes[key].to(device).view(-1, 1, 1)

    ys = torch.arange(height, device=device, dtype=torch.float32).view(1, -1, 1) + 0.5
    xs = torch.arange(width, device=device, dtype=torch.float32).view(1, 1, -1) + 0.5
    dx, dy = xs - width / 2, ys - height / 2
    cos, sin = torch.cos(col("angle")), torch.sin(col("angle"))
    src_x = cos * dx + sin * dy + width / 2
    src_y = -sin * dx + cos * dy + height / 2
    u = (src_x - col("cx")) / col("half_w")
    v = (src_y - col("cy")) / col("half_h")
    grid = torch.stack([u, v], dim=-1).to(templates.dtype)
    alpha = F.grid_sample(templates, grid, mode="bilinear", align_corners=False)
    return alpha.clamp(0.0, 1.0)


def cloud_alpha_masks(
    area_fraction: torch.Tensor,
    height: int,
    width: int,
    blur_sigma: float = 5.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Random cloud opacity maps (the authors' procedure), one per entry of ``area_fraction``.

    Args:
        area_fraction: (n,) box area / image area.
        blur_sigma: Gaussian blur of the template in pixels of a template as large as the image
            (the authors: 5 at 300 px); stretched with the template to the box.

    Returns:
        (n, 1, height, width) alpha in [0, 1].
    """
    n, device = area_fraction.shape[0], area_fraction.device
    size = max(height, width)
    boxes = sample_cloud_boxes(area_fraction, height, width, generator)
    templates = cloud_templates(n, size, blur_sigma, generator, device)
    return render_cloud_alpha(boxes, templates, height, width)


def _pixel_coords(n, height, width, device):
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    return xs.view(1, 1, -1).expand(n, height, width), ys.view(1, -1, 1).expand(n, height, width)


def _authors_occlusion(a, height, width, generator, device):
    n = a.shape[0]
    x, y = _pixel_coords(n, height, width, device)
    # Random corner: mirror the coordinates instead of four cases.
    flip_x = (_rand(n, generator, device) < 0.5).view(-1, 1, 1)
    flip_y = (_rand(n, generator, device) < 0.5).view(-1, 1, 1)
    u = torch.where(flip_x, 1 - x, x)
    v = torch.where(flip_y, 1 - y, y)

    aspect = 0.5 + 1.5 * _rand(n, generator, device)
    leg_w = torch.sqrt(2 * a / aspect)
    leg_h = a / leg_w.clamp_min(1e-6)  # from the uncapped leg, as the authors do
    leg_w = leg_w.clamp(1e-6, _MAX_SIDE).view(-1, 1, 1)
    leg_h = leg_h.clamp(1e-6, _MAX_SIDE).view(-1, 1, 1)
    triangle = (u / leg_w + v / leg_h) < 1

    lo, hi = _LINE_OFFSET
    h1 = lo + (hi - lo) * _rand(n, generator, device)
    h2 = torch.minimum(2 * a - h1, torch.full_like(h1, _MAX_SIDE))
    h1, h2 = h1.view(-1, 1, 1), h2.view(-1, 1, 1)
    # The line runs from h1 on one edge to h2 on the opposite one (left to right for a
    # horizontal cut, top to bottom for a vertical one); the lost side is the top or the bottom
    # (left or right): only the coordinate across the line is mirrored.
    horizontal = (_rand(n, generator, device) < 0.5).view(-1, 1, 1)
    along, across = torch.where(horizontal, x, y), torch.where(horizontal, v, u)
    line = across < h1 + (h2 - h1) * along
    return torch.where((a <= _TRIANGLE_MAX_AREA).view(-1, 1, 1), triangle, line)


def _exact_area_occlusion(a, height, width, generator, device):
    n = a.shape[0]
    u, v = _pixel_coords(n, height, width, device)
    theta = 2 * math.pi * _rand(n, generator, device).view(-1, 1, 1)
    proj = (torch.cos(theta) * u + torch.sin(theta) * v).reshape(n, -1)
    # The round(a * H * W) pixels furthest along the direction: one side of a line, exact area.
    lost_count = torch.round(a * height * width).long().view(-1, 1)
    ordered = torch.sort(proj, dim=1, descending=True).values
    threshold = ordered.gather(1, (lost_count - 1).clamp_min(0))
    lost = (proj >= threshold) & (lost_count > 0)
    return lost.view(n, height, width)


def occlusion_masks(
    area_fraction: torch.Tensor,
    height: int,
    width: int,
    generator: Optional[torch.Generator] = None,
    mode: str = "authors",
) -> torch.Tensor:
    """Random missing-data masks: one side of a random line is lost.

    Args:
        area_fraction: (n,) nominal area / image area in [0, 1] (see the module docstring for
            what each mode covers; "paper" loses exactly this area).
        mode: "authors" (corner triangles up to 0.51, slanted lines above) or "paper" (lines of
            any direction, exact area).

    Returns:
        (n, 1, height, width) float mask, 1 where data is missing.
    """
    _check_mode(mode)
    device = area_fraction.device
    a = area_fraction.float().clamp(0.0, 1.0)
    if mode == "authors":
        lost = _authors_occlusion(a, height, width, generator, device)
    else:
        lost = _exact_area_occlusion(a, height, width, generator, device)
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
    mode: str = "authors",
):
    """Corrupts every image with the artifact named by ``kinds``.

    Args:
        images: (n, 3, H, W) clean views in [0, 1].
        kinds: (n,) int64, ARTIFACT_NONE / ARTIFACT_CLOUD / ARTIFACT_OCCLUSION.
        area_fraction: (n,) configured artifact area / image area (the maximum in "paper" mode).
        cloud_textures: optional (n, 3, H, W) cloud images (rows of non-cloud views unused);
            procedural clouds when None.
        blur_sigma: blur of the cloud template in pixels (see :func:`cloud_alpha_masks`).
        mode: "authors" or "paper" (see the module docstring).

    Returns:
        corrupted: (n, 3, H, W); artifact: (n, 1, H, W) in [0, 1], how much of each pixel was
        replaced (cloud alpha, or 1 where data is missing).
    """
    n, _, height, width = images.shape
    device = images.device
    area = artifact_areas(area_fraction.to(device), mode, generator)
    artifact = images.new_zeros(n, 1, height, width)
    corrupted = images.clone()
    cloud_idx = torch.nonzero(kinds == ARTIFACT_CLOUD).flatten()
    occl_idx = torch.nonzero(kinds == ARTIFACT_OCCLUSION).flatten()
    if len(cloud_idx):
        alpha = cloud_alpha_masks(area[cloud_idx], height, width, blur_sigma, generator)
        alpha = alpha.to(images.dtype)
        if cloud_textures is None:
            texture = procedural_cloud_textures(len(cloud_idx), height, width, generator, device)
        else:
            texture = cloud_textures[cloud_idx].to(images.dtype)
        clean = images[cloud_idx]
        corrupted[cloud_idx] = alpha * texture + (1 - alpha) * clean
        artifact[cloud_idx] = alpha
    if len(occl_idx):
        lost = occlusion_masks(area[occl_idx], height, width, generator, mode)
        corrupted[occl_idx] = images[occl_idx] * (1 - lost)
        artifact[occl_idx] = lost
    return corrupted, artifact
