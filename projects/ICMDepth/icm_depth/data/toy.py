"""Procedural road scenes with exact depth and instances, written as Cityscapes-DVPS files.

A pinhole camera 1.5 m above a ground plane looks along the road: sky (no depth), a road with
lane marks, walls of buildings on both sides and box-shaped vehicles (cars, trucks) at varying
distances, drawn far to near with a depth test. Depth is exact for every surface; far ground
beyond ``MAX_DEPTH`` and the sky are invalid (0), as in Cityscapes-DVPS.
"""

import os
from typing import Tuple

import cv2
import numpy as np

from d2common.data import seeded_rng

from .formats import DEPTH_SCALE, PANOPTIC_DIVISOR

TOY_SEED = 7
TOY_SIZE = (96, 192)  # (H, W), Cityscapes' 1:2 aspect
TOY_SPLITS = {"train": 64, "val": 16}
MAX_DEPTH = 80.0
CAMERA_HEIGHT = 1.5
# Cityscapes trainIds.
ROAD, SIDEWALK, BUILDING, SKY, CAR, TRUCK = 0, 1, 2, 10, 13, 14
_VEHICLES = {CAR: (1.8, 1.5), TRUCK: (2.5, 3.2)}  # width, height in metres


def render_scene(rng: np.random.Generator, size: Tuple[int, int] = TOY_SIZE):
    """One scene.

    Returns:
        image: (H, W, 3) uint8 RGB; depth: (H, W) float32 metres, 0 = invalid;
        panoptic: (H, W) int32, trainId or trainId * 1000 + instance.
    """
    height, width = size
    focal = width * rng.uniform(0.8, 1.0)
    cx = width / 2 + rng.uniform(-4, 4)
    horizon = height * rng.uniform(0.38, 0.46)
    v = np.arange(height, dtype=np.float64)[:, None] + 0.5
    u = np.arange(width, dtype=np.float64)[None, :] + 0.5
    depth = np.full((height, width), np.inf)
    image = np.zeros((height, width, 3))
    panoptic = np.full((height, width), SKY, np.int32)

    sky_top, sky_low = rng.uniform(0.3, 0.6, 3), rng.uniform(0.7, 0.95, 3)
    t = np.clip(v / max(horizon, 1), 0, 1)[..., None]
    image[:] = sky_top * (1 - t) + sky_low * t

    # Ground plane: Z = f h / (v - horizon), lateral X = (u - cx) Z / f.
    below = np.broadcast_to(v > horizon + 1e-6, (height, width))
    z_ground = np.where(below, focal * CAMERA_HEIGHT / np.maximum(v - horizon, 1e-6), np.inf)
    x_ground = (u - cx) * z_ground / focal
    road_half = rng.uniform(4.0, 6.0)
    on_road = np.abs(x_ground) < road_half
    ground_color = np.where(on_road[..., None], rng.uniform(0.25, 0.4), rng.uniform(0.45, 0.6))
    ground_color = ground_color * np.array([1.0, 1.0, 1.0]) + np.where(
        on_road[..., None], 0.0, np.array([-0.1, 0.05, -0.15])
    )
    lane = (np.abs(np.abs(x_ground) - road_half / 2) < 0.12) & (np.mod(z_ground, 6.0) < 3.0)
    ground_color = np.where(lane[..., None], 0.9, ground_color)
    _paint(depth, image, panoptic, below, z_ground, ground_color, np.where(on_road, ROAD, SIDEWALK))

    # Building walls at X = +-wall (planes parallel to the road).
    for side in (-1.0, 1.0):
        wall = side * (road_half + rng.uniform(1.5, 4.0))
        top = rng.uniform(6.0, 18.0)
        du = u - cx
        z_wall = np.where(du * side > 0.5, focal * wall / np.where(du == 0, 1e-6, du), np.inf)
        y_up = CAMERA_HEIGHT - (v - horizon) * z_wall / focal  # height above ground
        mask = np.isfinite(z_wall) & (y_up >= 0) & (y_up <= top)
        base = rng.uniform(0.3, 0.8, 3)
        windows = (np.mod(z_wall, 4.0) < 1.8) & (np.mod(y_up, 3.0) > 1.2) & (y_up > 2.0)
        color = np.where(windows[..., None], base * 0.35, base)
        _paint(depth, image, panoptic, mask, z_wall, color, BUILDING)

    # Vehicles, far to near.
    count = int(rng.integers(1, 6))
    lanes = np.array([-road_half / 2, 0.0, road_half / 2]) * 0.9
    placed = sorted(
        (
            (rng.uniform(5.0, 45.0), rng.choice(lanes) + rng.uniform(-0.6, 0.6), cls)
            for cls in rng.choice([CAR, CAR, CAR, TRUCK], size=count)
        ),
        reverse=True,
    )
    for k, (z, x, cls) in enumerate(placed, start=1):
        w, h = _VEHICLES[int(cls)]
        left, right = cx + focal * (x - w / 2) / z, cx + focal * (x + w / 2) / z
        bottom = horizon + focal * CAMERA_HEIGHT / z
        top = horizon + focal * (CAMERA_HEIGHT - h) / z
        box = (u >= left) & (u < right) & (v >= top) & (v < bottom)
        # The rear face bulges slightly towards the camera in its middle.
        bulge = 0.3 * (1 - ((u - (left + right) / 2) / max((right - left) / 2, 1e-6)) ** 2)
        z_face = np.broadcast_to(z - np.clip(bulge, 0, None), (height, width))
        rel = (v - top) / max(bottom - top, 1e-6)
        body = rng.uniform(0.1, 0.95, 3)
        color = np.where((rel < 0.35)[..., None], body * 0.3 + 0.1, body)
        color = np.where((rel > 0.85)[..., None], 0.05, color) * np.ones(3)
        _paint(depth, image, panoptic, box, z_face, color, int(cls) * PANOPTIC_DIVISOR + k)

    fog = 1.0 - np.exp(-np.where(np.isfinite(depth), depth, 200.0) / 150.0)
    image = image * (1 - fog[..., None]) + sky_low * fog[..., None]
    image = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)
    depth = np.where(np.isfinite(depth) & (depth <= MAX_DEPTH), depth, 0.0)
    return (image * 255).round().astype(np.uint8), depth.astype(np.float32), panoptic


def _paint(depth, image, panoptic, mask, z, color, label):
    """Draws ``mask`` pixels that are nearer than what is already there (z-buffer)."""
    z = np.broadcast_to(z, depth.shape)
    draw = mask & (z < depth)
    depth[draw] = z[draw]
    image[draw] = np.broadcast_to(color, image.shape)[draw]
    panoptic[draw] = np.broadcast_to(label, panoptic.shape)[draw]


def write_toy_dataset(root: str, seed: int = TOY_SEED, size=TOY_SIZE, splits=None) -> None:
    """Writes ``<root>/video_sequence/{train,val}/`` in the Cityscapes-DVPS layout."""
    for split, count in (splits or TOY_SPLITS).items():
        out = os.path.join(root, "video_sequence", split)
        os.makedirs(out, exist_ok=True)
        for i in range(count):
            with np.errstate(invalid="ignore", divide="ignore"):
                image, depth, panoptic = render_scene(seeded_rng(seed, split, i), size)
            seq, frame = i // 8, i % 8
            prefix = os.path.join(out, f"{seq:06d}_{frame:06d}_toycity_{seq:06d}_{frame:06d}")
            cv2.imwrite(prefix + "_leftImg8bit.png", image[:, :, ::-1])
            cv2.imwrite(prefix + "_depth.png", np.round(depth * DEPTH_SCALE).astype(np.uint16))
            cv2.imwrite(prefix + "_gtFine_instanceTrainIds.png", panoptic.astype(np.uint16))
