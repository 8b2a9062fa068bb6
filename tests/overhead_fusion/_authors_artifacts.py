"""An independent NumPy / SciPy rendering of the authors' artifact procedure, at their 300 px.

Written from the procedure of the authors' release (see the project README and the module
docstring of ``overhead_fusion.ops.artifacts``) in their own steps: integer box sizes, a
300 x 300 alpha template built pixel by pixel from its distance to the centre, blurred with
sigma 5, resized to the box, pasted, and the whole alpha image rotated about its centre;
corner triangles and slanted lines from the cross product with the line's direction.
Used to check the statistics of the batched torch version, not its individual draws.
"""

import numpy as np
from scipy import ndimage

SIDE = 300


def perlin(rng: np.random.Generator, side: int, res: int = 5) -> np.ndarray:
    """Perlin noise on a res x res lattice (gradient noise with the quintic fade)."""
    angles = 2 * np.pi * rng.random((res + 1, res + 1))
    gx, gy = np.cos(angles), np.sin(angles)
    t = np.arange(side) * res / side
    i0 = np.floor(t).astype(int)
    f = t - i0
    fy, fx = f[:, None], f[None, :]
    iy, ix = i0[:, None], i0[None, :]

    def dot(dy, dx):
        return gx[iy + dy, ix + dx] * (fx - dx) + gy[iy + dy, ix + dx] * (fy - dy)

    fade = lambda s: 6 * s**5 - 15 * s**4 + 10 * s**3  # noqa: E731
    u, v = fade(fx), fade(fy)
    top = dot(0, 0) * (1 - u) + dot(0, 1) * u
    bottom = dot(1, 0) * (1 - u) + dot(1, 1) * u
    return top * (1 - v) + bottom * v


def fringe(rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    return np.clip(np.sqrt(2) * perlin(rng, side) + 1, 0, 1)


def template(rng: np.random.Generator) -> np.ndarray:
    """(300, 300) blurred alpha template: core + Perlin-modulated fringe."""
    d = np.hypot(*np.meshgrid(np.arange(SIDE) - SIDE / 2, np.arange(SIDE) - SIDE / 2)) / (SIDE / 2)
    core = np.zeros_like(d)
    core[d < 0.5] = 1
    ramp = (d >= 0.5) & (d < 0.6)
    core[ramp] = 1 - 0.2 * (d[ramp] - 0.5) / 0.1
    core[(d >= 0.6) & (d < 0.65)] = 0.8
    outer = np.where(d >= 0.65, np.clip(0.8 - 0.8 * (d - 0.65) / 0.35, 0, 1), 0)
    return ndimage.gaussian_filter(core + fringe(rng) * outer, 5)


def cloud_alpha(rng: np.random.Generator, area_fraction: float) -> np.ndarray:
    """(300, 300) alpha of one cloud."""
    area = area_fraction * SIDE * SIDE
    aspect = rng.uniform(0.5, 2)
    w = int(np.sqrt(area / aspect))
    h = int(area / w)
    w, h = min(w, SIDE - 2), min(h, SIDE - 2)
    w, h = w + w % 2, h + h % 2
    cx = rng.integers(w // 2, SIDE - w // 2)
    cy = rng.integers(h // 2, SIDE - h // 2)
    t = template(rng)
    box = ndimage.zoom(t, (h / SIDE, w / SIDE), order=1, grid_mode=True, mode="grid-constant")
    alpha = np.zeros((SIDE, SIDE))
    alpha[cy - h // 2 : cy - h // 2 + box.shape[0], cx - w // 2 : cx - w // 2 + box.shape[1]] = box
    angle = rng.integers(-45, 45)
    return np.clip(ndimage.rotate(alpha, angle, reshape=False, order=1, cval=0.0), 0, 1)


def occlusion(rng: np.random.Generator, area_fraction: float) -> np.ndarray:
    """(300, 300) bool, True where data is missing."""
    area = area_fraction * SIDE * SIDE
    xs, ys = np.meshgrid(np.arange(SIDE, dtype=float), np.arange(SIDE, dtype=float))
    if area_fraction > 0.51:
        horizontal = rng.integers(0, 2) == 1
        first_side = rng.integers(0, 2) == 1
        a = rng.integers(SIDE // 2, SIDE - 5)
        b = min(a + (area - a * SIDE) * 2 / SIDE, SIDE - 2)
        if not first_side:
            a, b = SIDE - a, SIDE - b
        along, across = (xs, ys) if horizontal else (ys, xs)
        # side of the line from (0, a) to (SIDE, b): cross product with its direction
        cross = along * (b - a) - (across - a) * SIDE
        return cross > 0 if first_side else cross < 0
    corner = rng.integers(0, 4)
    aspect = rng.uniform(0.5, 2)
    w = int(np.sqrt(2 * area / aspect))
    h = int(area / w)
    w, h = min(w, SIDE - 2), min(h, SIDE - 2)
    u = xs if corner in (0, 2) else SIDE - 1 - xs
    v = ys if corner in (0, 1) else SIDE - 1 - ys
    return h * u + w * v < w * h
