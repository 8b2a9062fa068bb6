"""Procedural flash / ambient pairs written in the FAID layout (the toy dataset).

Each scene (a back wall, a floor and a few spheres) is ray-cast twice: under a point flash next
to the lens (inverse-square fall-off, specular highlights, hard shadows) and under a soft
overhead area light (warm, uniform, soft shadows). A small fraction of the ambient light is
also present in the flash image, as in real flash photographs.
"""

import os

import cv2
import numpy as np

from d2common.data import seeded_rng

TOY_SPLITS = {"train": 64, "val": 16}
TOY_SEED = 2020
TOY_SIZE = (128, 96)  # (long side, short side); a quarter of the scenes are portrait
_CATEGORIES = ("Objects", "Toys", "Shelves", "Rooms")
_FLASH_POS = np.array([0.15, -0.25, 0.0])  # next to the lens, so shadows fall sideways
_EPS = 1e-3


def _sphere_hits(origins, dirs, centers, radii):
    """Ray / sphere hits: (P, 3), (P, 3), (K, 3), (K,) -> near, far t (P, K), nan if none."""
    oc = origins[:, None, :] - centers[None]
    a = (dirs * dirs).sum(-1)[:, None]
    b = 2.0 * (oc * dirs[:, None, :]).sum(-1)
    c = (oc * oc).sum(-1) - radii[None] ** 2
    disc = b * b - 4 * a * c
    sq = np.sqrt(np.where(disc > 0, disc, np.nan))
    return (-b - sq) / (2 * a), (-b + sq) / (2 * a)


def _visibility(points, light, centers, radii):
    """1 where the segment point -> light is not blocked by a sphere. (P, 3), (3,) -> (P,)."""
    near, far = _sphere_hits(points, light[None] - points, centers, radii)
    blocked = (far > _EPS) & (near < 1.0 - _EPS)
    return (~np.nan_to_num(blocked, nan=False).astype(bool)).all(axis=1).astype(np.float64)


def _scene(rng):
    num = int(rng.integers(2, 5))
    floor_y = rng.uniform(0.8, 1.2)
    wall_z = rng.uniform(4.5, 6.0)
    radii = rng.uniform(0.25, 0.6, num)
    centers = np.stack(
        [rng.uniform(-1.3, 1.3, num), floor_y - radii, rng.uniform(2.2, wall_z - 0.8, num)], axis=1
    )
    centers[:, 1] -= rng.uniform(0, 0.6, num) * (rng.random(num) < 0.3)  # some float
    return {
        "floor_y": floor_y,
        "wall_z": wall_z,
        "centers": centers,
        "radii": radii,
        "sphere_albedo": rng.uniform(0.15, 0.9, (num, 3)),
        "wall_albedo": rng.uniform(0.4, 0.85, 3),
        "floor_albedo": rng.uniform(0.2, 0.6, (2, 3)),
        "stripe_freq": rng.uniform(3, 9),
        "flash_power": rng.uniform(0.75, 1.1),
        "ambient_tint": np.array([1.0, rng.uniform(0.8, 0.95), rng.uniform(0.6, 0.85)]),
        "ambient_level": rng.uniform(0.3, 0.45),
        "lights": np.stack(
            [rng.uniform(-2.5, 2.5, 12), np.full(12, -2.5), rng.uniform(1.5, 5.5, 12)], axis=1
        ),
    }


def render_pair(rng: np.random.Generator, width: int, height: int):
    """Renders one scene twice. Returns (flash, ambient), each (height, width, 3) uint8 RGB."""
    s = _scene(rng)
    focal = 1.1 * max(width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    dirs = np.stack(
        [(xs + 0.5 - width / 2) / focal, (ys + 0.5 - height / 2) / focal, np.ones_like(xs)], -1
    )
    dirs = (dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)).reshape(-1, 3)
    origins = np.zeros_like(dirs)

    t_wall = s["wall_z"] / dirs[:, 2]
    t_floor = np.where(dirs[:, 1] > 1e-6, s["floor_y"] / np.maximum(dirs[:, 1], 1e-6), np.inf)
    near, _ = _sphere_hits(origins, dirs, s["centers"], s["radii"])
    t_all = np.concatenate([t_wall[:, None], t_floor[:, None], np.nan_to_num(near, nan=np.inf)], 1)
    t_all[t_all <= 0] = np.inf
    hit = t_all.argmin(axis=1)
    points = dirs * t_all[np.arange(len(dirs)), hit][:, None]

    normals = np.tile([0.0, 0.0, -1.0], (len(dirs), 1))
    normals[hit == 1] = [0.0, -1.0, 0.0]
    sphere = hit >= 2
    k = hit[sphere] - 2
    normals[sphere] = (points[sphere] - s["centers"][k]) / s["radii"][k][:, None]

    stripes = 0.8 + 0.2 * np.sign(np.sin(s["stripe_freq"] * points[:, 0] + 2 * points[:, 1]))
    albedo = s["wall_albedo"][None] * stripes[:, None]
    checker = ((np.floor(points[:, 0] * 2) + np.floor(points[:, 2] * 2)) % 2).astype(int)
    albedo[hit == 1] = s["floor_albedo"][checker[hit == 1]]
    albedo[sphere] = s["sphere_albedo"][k]
    shininess = np.where(sphere, 60.0, 8.0)
    specular = np.where(sphere, 0.6, 0.04)

    # Flash: point light, inverse-square fall-off, Blinn-Phong highlight, hard shadows.
    to_light = _FLASH_POS[None] - points
    dist2 = (to_light**2).sum(-1)
    ldir = to_light / np.sqrt(dist2)[:, None]
    ndotl = np.clip((normals * ldir).sum(-1), 0, None)
    half = ldir - dirs
    half /= np.linalg.norm(half, axis=-1, keepdims=True)
    spec = specular * np.clip((normals * half).sum(-1), 0, None) ** shininess
    vis = _visibility(points, _FLASH_POS, s["centers"], s["radii"])
    flash_irr = vis * ndotl / dist2
    flash = albedo * flash_irr[:, None] + (spec * flash_irr)[:, None]
    flash *= s["flash_power"] / max(np.percentile(flash, 99), 1e-6)

    # Ambient: overhead area light (averaged samples -> soft shadows) plus a dim sky term.
    irr = np.zeros(len(points))
    for light in s["lights"]:
        to_l = light[None] - points
        d2 = (to_l**2).sum(-1)
        cos = np.clip((normals * to_l).sum(-1) / np.sqrt(d2), 0, None)
        irr += cos * _visibility(points, light, s["centers"], s["radii"]) / d2
    irr = irr / len(s["lights"]) + 0.02 * (0.5 - 0.5 * normals[:, 1])
    ambient = albedo * irr[:, None] * s["ambient_tint"][None]
    ambient *= s["ambient_level"] / max(ambient.mean(), 1e-6)
    flash += 0.15 * ambient

    def to_uint8(linear):
        img = np.clip(linear, 0, 1) ** (1 / 2.2) + rng.normal(0, 0.006, linear.shape)
        return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8).reshape(height, width, 3)

    return to_uint8(flash), to_uint8(ambient)


def generate_toy_faid(target_dir: str, seed: int = TOY_SEED, splits=None, size=TOY_SIZE) -> None:
    """Writes ``images/<Category>_<id>_{flash,ambient}.png`` and ``splits/<split>.txt``."""
    splits = TOY_SPLITS if splits is None else splits
    os.makedirs(os.path.join(target_dir, "images"), exist_ok=True)
    os.makedirs(os.path.join(target_dir, "splits"), exist_ok=True)
    index = 0
    for split, count in splits.items():
        names = []
        for _ in range(count):
            rng = seeded_rng(seed, split, index)
            portrait = rng.random() < 0.25
            width, height = (size[1], size[0]) if portrait else size
            flash, ambient = render_pair(rng, width, height)
            name = f"{_CATEGORIES[index % len(_CATEGORIES)]}_{index:03d}"
            for kind, img in (("flash", flash), ("ambient", ambient)):
                path = os.path.join(target_dir, "images", f"{name}_{kind}.png")
                cv2.imwrite(path, img[:, :, ::-1])
            names.append(name)
            index += 1
        with open(os.path.join(target_dir, "splits", f"{split}.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
