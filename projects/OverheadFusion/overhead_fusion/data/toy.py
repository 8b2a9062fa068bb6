"""Procedural aerial-like tiles (textured ground, roads, buildings) in the City-OSM format."""

import os

import cv2
import numpy as np
import torch

from d2common.data import seeded_rng

from ..ops import fractal_noise
from .label_formats import LABEL_FORMATS, encode_color_label

__all__ = ["TOY_SPLITS", "TOY_TILE_SIZE", "TOY_GRID", "generate_toy_split", "render_toy_tile"]

# split -> number of big images (each cut into TOY_GRID x TOY_GRID tiles by the loader).
TOY_SPLITS = {"train": 16, "val": 4}
TOY_TILE_SIZE = 256
TOY_GRID = 2
_BACKGROUND, _BUILDING, _ROAD = 0, 1, 2


def _ground(rng: np.random.Generator, size: int) -> np.ndarray:
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    noise = fractal_noise(2, size, size, 4, 4, 0.55, gen).numpy()
    base = np.array([0.36, 0.45, 0.27]) + rng.uniform(-0.05, 0.05, 3)
    ground = base[None, None, :] * (1.0 + 0.6 * noise[0][..., None])
    ground[..., 0] += 0.15 * np.clip(noise[1], 0, None)  # patches of bare soil
    return np.clip(ground, 0, 1)


def render_toy_tile(rng: np.random.Generator, size: int = TOY_TILE_SIZE):
    """One procedural tile.

    Returns:
        image (size, size, 3) uint8 RGB; labels (size, size) uint8 class ids of City-OSM
        (0 background, 1 building, 2 road).
    """
    image = _ground(rng, size)
    labels = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(3, 6)):
        points = rng.uniform(-0.1, 1.1, (rng.integers(2, 4), 2)) * size
        width = int(rng.integers(size // 60, size // 30 + 1))
        shade = rng.uniform(0.36, 0.48)
        pts = np.round(points).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [pts], False, (shade, shade * 1.05, shade * 0.95), width)
        cv2.polylines(labels, [pts], False, _ROAD, width)
    for _ in range(rng.integers(16, 28)):
        w, h = rng.integers(size // 14, size // 6, 2)
        x, y = rng.integers(0, size - w), rng.integers(0, size - h)
        if (labels[y : y + h, x : x + w] == _ROAD).any():
            continue
        # Muted roof colours, close to the ground's and the roads': segmentation must see detail.
        roof = rng.choice([[0.5, 0.38, 0.3], [0.5, 0.5, 0.45], [0.35, 0.38, 0.3]])
        shadow = max(2, size // 80)
        image[y + shadow : y + h + shadow, x + shadow : x + w + shadow] *= 0.75
        image[y : y + h, x : x + w] = np.asarray(roof) * rng.uniform(0.85, 1.15)
        labels[y : y + h, x : x + w] = _BUILDING
    image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1)
    return np.round(image * 255).astype(np.uint8), labels


def generate_toy_split(directory: str, split: str, seed: int = 0) -> None:
    """Writes ``toy<n>_image.png`` / ``toy<n>_labels.png`` (City-OSM layout) for ``split``."""
    os.makedirs(directory, exist_ok=True)
    fmt = LABEL_FORMATS["city_osm"]
    for n in range(TOY_SPLITS[split]):
        image, labels = render_toy_tile(seeded_rng(seed, split, n))
        stem = os.path.join(directory, f"toy{n}")
        cv2.imwrite(stem + "_image.png", image[:, :, ::-1])
        cv2.imwrite(stem + "_labels.png", encode_color_label(labels, fmt)[:, :, ::-1])
