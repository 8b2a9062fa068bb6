"""Image panels for the projects' visualisation tools (numpy / OpenCV only)."""

import os
from typing import Iterable, Tuple

import cv2
import numpy as np


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """HxW or HxWx3 array (float in [0, 1] or uint8) -> HxWx3 uint8."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return img


def colorize(values: np.ndarray, vmin=None, vmax=None, colormap=cv2.COLORMAP_MAGMA, invalid=None):
    """Maps an HxW float array to an HxWx3 uint8 RGB image.

    Args:
        values: HxW array.
        vmin, vmax: value range mapped to the colormap ends (default: finite min / max).
        invalid: optional HxW bool mask drawn black.
    """
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v) & (True if invalid is None else ~invalid)
    lo = np.min(v[finite]) if vmin is None and finite.any() else (vmin or 0.0)
    hi = np.max(v[finite]) if vmax is None and finite.any() else (vmax if vmax is not None else 1)
    scaled = np.clip((v - lo) / max(hi - lo, 1e-12), 0, 1)
    scaled[~finite] = 0
    rgb = cv2.applyColorMap(np.rint(scaled * 255).astype(np.uint8), colormap)[:, :, ::-1].copy()
    rgb[~finite] = 0
    return rgb


def label_colors(num_labels: int, seed: int = 3) -> np.ndarray:
    """A fixed palette: (num_labels, 3) uint8, label 0 black."""
    rng = np.random.default_rng(seed)
    colors = rng.integers(40, 256, size=(num_labels, 3), dtype=np.uint8)
    colors[0] = 0
    return colors


def panel_grid(panels: Iterable[Tuple[str, np.ndarray]], columns: int = 4, height: int = 240):
    """Lays out titled images in a grid. Each panel: (title, HxW or HxWx3 image). Returns RGB."""
    tiles = []
    for title, image in panels:
        img = to_uint8_rgb(image)
        scale = height / img.shape[0]
        img = cv2.resize(img, (max(1, round(img.shape[1] * scale)), height), cv2.INTER_NEAREST)
        bar = np.full((22, img.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([bar, img], axis=0))
    width = max(t.shape[1] for t in tiles)
    tiles = [
        np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles
    ]
    rows = []
    for i in range(0, len(tiles), columns):
        row = tiles[i : i + columns]
        row += [np.full_like(tiles[0], 255)] * (columns - len(row)) if len(tiles) > columns else []
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def save_rgb(path: str, image: np.ndarray) -> str:
    """Writes an RGB uint8 (or [0, 1] float) image to ``path``, creating directories."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, to_uint8_rgb(image)[:, :, ::-1]):
        raise OSError(f"could not write image {path}")
    return path
