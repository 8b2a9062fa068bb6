"""Procedural line-drawing scenes in the SketchyScene-Matching layout (the toy dataset).

Objects of a few SketchyScene categories are drawn as black strokes on white; their filled
regions become INSTANCE_GT / CLASS_GT ``.mat`` maps and template expressions become
``sentence_instance_{split}.json``, so :func:`load_sketchyscene_matching` reads the result.
"""

import json
import os
from typing import Dict, List, Tuple

import cv2
import numpy as np
import scipy.io

from d2common.data import seeded_rng

from .categories import SKETCHYSCENE_CATEGORIES
from .expressions import generate_expressions, template_vocabulary
from .sketchyscene import class_gt_path, drawing_path, expressions_path, instance_gt_path

TOY_CATEGORIES = ("tree", "house", "car", "sun", "cloud")
# Written to VERSION_FILE; data of another version is regenerated (builtin.py). 2: no "in front
# of" / "behind" between sky and ground objects.
TOY_VERSION = 2
VERSION_FILE = "generator_version.txt"
# (width, height) ranges as fractions of the image side, and whether the object sits in the sky.
_SHAPES = {
    "tree": ((0.10, 0.16), (0.18, 0.26), False),
    "house": ((0.16, 0.24), (0.16, 0.24), False),
    "car": ((0.16, 0.22), (0.09, 0.12), False),
    "sun": ((0.10, 0.14), None, True),
    "cloud": ((0.16, 0.24), (0.08, 0.11), True),
}


def _regions(name: str, x1: int, y1: int, w: int, h: int) -> Tuple[np.ndarray, list]:
    """Filled parts (list of int32 polygons / ellipses) and inner detail strokes of one object."""
    parts, details = [], []
    if name == "tree":
        tw = max(2, w // 5)
        parts.append(
            (
                "poly",
                [
                    (x1 + w // 2 - tw // 2, y1 + h),
                    (x1 + w // 2 + tw // 2, y1 + h),
                    (x1 + w // 2 + tw // 2, y1 + h // 2),
                    (x1 + w // 2 - tw // 2, y1 + h // 2),
                ],
            )
        )
        parts.append(("ellipse", (x1 + w // 2, y1 + int(h * 0.35)), (w // 2, int(h * 0.35))))
    elif name == "house":
        roof = int(h * 0.4)
        parts.append(
            ("poly", [(x1, y1 + roof), (x1 + w, y1 + roof), (x1 + w, y1 + h), (x1, y1 + h)])
        )
        parts.append(("poly", [(x1, y1 + roof), (x1 + w // 2, y1), (x1 + w, y1 + roof)]))
        details.append(
            ("rect", (x1 + w // 2 - w // 8, y1 + h - h // 3), (x1 + w // 2 + w // 8, y1 + h))
        )
    elif name == "car":
        body = int(h * 0.45)
        parts.append(
            (
                "poly",
                [
                    (x1, y1 + body),
                    (x1 + w, y1 + body),
                    (x1 + w, y1 + int(h * 0.8)),
                    (x1, y1 + int(h * 0.8)),
                ],
            )
        )
        parts.append(
            (
                "poly",
                [
                    (x1 + w // 5, y1 + body),
                    (x1 + w // 3, y1),
                    (x1 + 2 * w // 3, y1),
                    (x1 + 4 * w // 5, y1 + body),
                ],
            )
        )
        r = max(2, h // 5)
        for cx in (x1 + w // 4, x1 + 3 * w // 4):
            parts.append(("ellipse", (cx, y1 + h - r), (r, r)))
    elif name == "sun":
        r = w // 2
        parts.append(("ellipse", (x1 + r, y1 + r), (int(r * 0.6), int(r * 0.6))))
        for a in np.linspace(0, 2 * np.pi, 8, endpoint=False):
            p0 = (x1 + r + int(r * 0.7 * np.cos(a)), y1 + r + int(r * 0.7 * np.sin(a)))
            p1 = (x1 + r + int(r * np.cos(a)), y1 + r + int(r * np.sin(a)))
            parts.append(("line", p0, p1))
    else:  # cloud
        for fx, fy, fr in ((0.3, 0.6, 0.3), (0.55, 0.4, 0.35), (0.75, 0.62, 0.25)):
            parts.append(
                (
                    "ellipse",
                    (x1 + int(w * fx), y1 + int(h * fy)),
                    (int(w * fr), int(h * (0.4 if fr > 0.3 else 0.38))),
                )
            )
    return parts, details  # fmt: skip


def _draw_object(canvas, mask, name, box, thickness):
    x1, y1, x2, y2 = box
    parts, details = _regions(name, x1, y1, x2 - x1, y2 - y1)
    region = np.zeros_like(mask)
    for kind, *geom in parts:
        if kind == "poly":
            cv2.fillPoly(region, [np.int32(geom[0])], 1)
        elif kind == "ellipse":
            cv2.ellipse(region, geom[0], geom[1], 0, 0, 360, 1, -1)
        else:
            cv2.line(region, geom[0], geom[1], 1, thickness + 1)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(canvas, contours, -1, 0, thickness)
    for _, p0, p1 in details:
        cv2.rectangle(canvas, p0, p1, 0, thickness)
    return region.astype(bool)


def _sample_layout(rng: np.random.Generator, size: int) -> List[Tuple[str, Tuple[int, ...]]]:
    """Category and box of every object: one or two repeated categories plus singletons."""
    names = list(rng.permutation(TOY_CATEGORIES))
    repeated = names[: int(rng.integers(1, 3))]
    singles = names[len(repeated) : len(repeated) + int(rng.integers(1, 3))]
    wanted = [n for n in repeated for _ in range(int(rng.integers(2, 5)))] + singles
    placed: List[Tuple[str, Tuple[int, ...]]] = []
    for name in wanted:
        (wlo, whi), hr, sky = _SHAPES[name]
        for _ in range(60):
            w = int(size * rng.uniform(wlo, whi))
            h = w if hr is None else int(size * rng.uniform(*hr))
            x1 = int(rng.integers(2, size - w - 2))
            ylo, yhi = (2, int(size * 0.4) - h) if sky else (int(size * 0.42), size - h - 2)
            y1 = int(rng.integers(ylo, max(ylo + 1, yhi)))
            box = (x1, y1, x1 + w, y1 + h)
            if all(_separated(box, other, 4) for _, other in placed):
                placed.append((name, box))
                break
    return placed


def _separated(a, b, gap) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def render_scene(rng: np.random.Generator, size: int):
    """One sketch: (drawing HxW uint8, CLASS_GT HxW uint8, INSTANCE_GT HxW uint8, names, boxes).

    Instance ids are random distinct values so that the instance index is their rank.
    """
    layout = _sample_layout(rng, size)
    drawing = np.full((size, size), 255, np.uint8)
    classes = np.zeros((size, size), np.uint8)
    instances = np.zeros((size, size), np.uint8)
    ids = np.sort(rng.choice(np.arange(1, 256), size=len(layout), replace=False))
    order = rng.permutation(len(layout))  # the instance rank is unrelated to drawing order
    thickness = max(1, size // 160)
    names, boxes = [None] * len(layout), [None] * len(layout)
    for rank, (name, box) in zip(order, layout):
        region = _draw_object(drawing, np.zeros_like(classes), name, box, thickness)
        classes[region] = SKETCHYSCENE_CATEGORIES.index(name) + 1
        instances[region] = ids[rank]
        ys, xs = np.nonzero(region)
        names[rank], boxes[rank] = name, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return drawing, classes, instances, names, np.array(boxes, dtype=np.float64)


def generate_toy_split(
    root: str, split: str, num_sketches: int, seed: int, size: int, first_key: int
) -> Dict[str, int]:
    """Writes one split (drawings, .mat maps, expression JSON) under ``root``."""
    for sub in ("DRAWING_GT", "CLASS_GT", "INSTANCE_GT"):
        os.makedirs(os.path.join(root, split, sub), exist_ok=True)
    entries = []
    for n in range(num_sketches):
        key = first_key + n
        rng = seeded_rng(seed, split, n)
        drawing, classes, instances, names, boxes = render_scene(rng, size)
        cv2.imwrite(drawing_path(root, split, key), drawing)
        scipy.io.savemat(class_gt_path(root, split, key), {"CLASS_GT": classes})
        scipy.io.savemat(instance_gt_path(root, split, key), {"INSTANCE_GT": instances})
        sky = [n for n in TOY_CATEGORIES if _SHAPES[n][2]]
        expressions = generate_expressions(boxes, names, (size, size), rng, sky=sky)
        entries.append({"key": key, "sen_instIdx_map": expressions})
    with open(expressions_path(root, split), "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1)
    return {
        "sketches": num_sketches,
        "expressions": sum(len(e["sen_instIdx_map"]) for e in entries),
    }


def generate_toy_dataset(
    root: str, seed: int = 0, num_train: int = 160, num_val: int = 20, size: int = 256
) -> None:
    """The toy SketchyScene-Matching dataset: train and val splits plus ``vocab.txt``."""
    generate_toy_split(root, "train", num_train, seed, size, first_key=1)
    generate_toy_split(root, "val", num_val, seed, size, first_key=10001)
    with open(os.path.join(root, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(template_vocabulary(TOY_CATEGORIES)) + "\n")
    with open(os.path.join(root, VERSION_FILE), "w", encoding="utf-8") as f:
        f.write(f"{TOY_VERSION}\n")


def toy_version(root: str) -> int:
    """The generator version of the toy data under ``root`` (1 when it has no version file)."""
    path = os.path.join(root, VERSION_FILE)
    if not os.path.isfile(path):
        return 1
    with open(path, encoding="utf-8") as f:
        text = f.read().strip()
    return int(text) if text.isdigit() else 0
