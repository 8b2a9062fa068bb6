"""A procedurally generated low-light instance-segmentation dataset in COCO format.

Each image holds a few filled shapes (circle, square, triangle; 10-48 px, many of them COCO
"small") in a colour close to the textured background; the rendered image then goes through
the Lv et al. low-light synthesis (parametric camera curves, so no data file is needed).
Annotations are COCO polygons taken from the exact shape masks, so detectron2's stock COCO
loader and evaluator read the dataset.
"""

import json
import os
from functools import lru_cache
from typing import Dict, List

import cv2
import numpy as np

from d2common.data import seeded_rng

from ..synthesis import CameraResponses, LowLightRanges, LowLightSynthesizer

TOY_CATEGORIES = [
    {"id": 1, "name": "circle"},
    {"id": 2, "name": "square"},
    {"id": 3, "name": "triangle"},
]
TOY_SPLITS = ("train", "val")
TOY_NUM_IMAGES = {"train": 64, "val": 16}
TOY_IMAGE_SIZE = (160, 192)  # (height, width)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour gradient plus low-frequency texture, float HxWx3 in [0, 1]."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0.25, 0.75, size=3).astype(np.float32)
    slope = rng.uniform(-0.3, 0.3, size=(2, 3)).astype(np.float32)
    img = base + (yy[..., None] / height) * slope[0] + (xx[..., None] / width) * slope[1]
    coarse = rng.normal(0, 0.08, size=(height // 16 + 1, width // 16 + 1, 3)).astype(np.float32)
    img += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(img, 0, 1)


def _shape_mask(rng, category: str, height: int, width: int):
    """Returns a uint8 HxW mask of one shape at a random place, or None if it falls off-image."""
    size = rng.uniform(10, 48)
    cy, cx = rng.uniform(size / 2, height - size / 2), rng.uniform(size / 2, width - size / 2)
    mask = np.zeros((height, width), np.uint8)
    if category == "circle":
        cv2.circle(mask, (int(cx), int(cy)), int(size / 2), 1, -1)
    else:
        n = 4 if category == "square" else 3
        angle = rng.uniform(0, 2 * np.pi)
        pts = [
            (
                cx + size / 2 * np.cos(angle + 2 * np.pi * k / n),
                cy + size / 2 * np.sin(angle + 2 * np.pi * k / n),
            )
            for k in range(n)
        ]
        cv2.fillPoly(mask, [np.round(np.array(pts)).astype(np.int32)], 1)
    return mask if mask.sum() > 40 else None


# Milder than the COCO-low-light defaults (gamma up to 5, sig_s up to 0.16) so that a model
# trained for a couple of CPU minutes still finds the objects.
TOY_SYNTHESIS_RANGES = LowLightRanges(gamma=(1.5, 2.5), sig_s=(0.0, 0.04), sig_c=(0.0, 0.015))
# The paper's ranges (Lv et al.'s: gamma 1.5-5, sig_s up to 0.16, sig_c up to 0.06): the
# "paper-noise" variant, where denoising the features has something to do.
PAPER_SYNTHESIS_RANGES = LowLightRanges()


def _darken_and_noise(rng, image: np.ndarray, ranges: LowLightRanges) -> np.ndarray:
    """Low-light degradation of a float [0, 1] image through the synthesis pipeline."""
    synthesizer = LowLightSynthesizer(_toy_camera_responses(), ranges)
    clean = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return synthesizer.synthesize(clean, synthesizer.sample_params(rng), rng)


@lru_cache(maxsize=1)
def _toy_camera_responses() -> CameraResponses:
    return CameraResponses.parametric()


def _mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def render_toy_image(
    seed: int, split: str, index: int, ranges: LowLightRanges = TOY_SYNTHESIS_RANGES
):
    """Renders one image. Returns (low-light HxWx3 uint8 RGB, clean float image, instances).

    The scene depends only on (seed, split, index); ``ranges`` sets the degradation, so two
    variants of one scene differ only in darkening and noise.
    """
    rng = seeded_rng(seed, split, index)
    height, width = TOY_IMAGE_SIZE
    image = _background(rng, height, width)
    occupied = np.zeros((height, width), bool)
    instances = []
    for _ in range(int(rng.integers(1, 5))):
        cat = TOY_CATEGORIES[int(rng.integers(len(TOY_CATEGORIES)))]
        for _attempt in range(10):
            mask = _shape_mask(rng, cat["name"], height, width)
            if mask is not None and not (occupied & (cv2.dilate(mask, np.ones((5, 5))) > 0)).any():
                break
        else:
            continue
        # Low contrast to the background, so the degradation matters.
        colour = np.clip(image[mask > 0].mean(0) + rng.uniform(-0.35, 0.35, 3), 0, 1)
        image[mask > 0] = colour
        occupied |= mask > 0
        instances.append({"category_id": cat["id"], "mask": mask})
    return _darken_and_noise(rng, image, ranges), image, instances


def generate_toy_coco(
    output_dir: str,
    seed: int = 0,
    num_images: Dict[str, int] = None,
    ranges: LowLightRanges = TOY_SYNTHESIS_RANGES,
) -> None:
    """Writes ``{train,val}/*.jpg`` and ``annotations/instances_{train,val}.json``."""
    num_images = num_images or TOY_NUM_IMAGES
    os.makedirs(os.path.join(output_dir, "annotations"), exist_ok=True)
    ann_id = 1
    for split in TOY_SPLITS:
        os.makedirs(os.path.join(output_dir, split), exist_ok=True)
        images, annotations = [], []
        for index in range(num_images[split]):
            low, _, instances = render_toy_image(seed, split, index, ranges)
            file_name = f"{index:06d}.jpg"
            cv2.imwrite(
                os.path.join(output_dir, split, file_name),
                low[:, :, ::-1],
                [cv2.IMWRITE_JPEG_QUALITY, 95],
            )
            images.append(
                {
                    "id": index + 1,
                    "file_name": file_name,
                    "height": low.shape[0],
                    "width": low.shape[1],
                }
            )
            for inst in instances:
                ys, xs = np.nonzero(inst["mask"])
                x0, y0 = float(xs.min()), float(ys.min())
                annotations.append(
                    {
                        "id": ann_id,
                        "image_id": index + 1,
                        "category_id": inst["category_id"],
                        "segmentation": _mask_to_polygons(inst["mask"]),
                        "bbox": [x0, y0, float(xs.max()) + 1 - x0, float(ys.max()) + 1 - y0],
                        "area": float(inst["mask"].sum()),
                        "iscrowd": 0,
                    }
                )
                ann_id += 1
        coco = {"images": images, "annotations": annotations, "categories": TOY_CATEGORIES}
        with open(os.path.join(output_dir, "annotations", f"instances_{split}.json"), "w") as f:
            json.dump(coco, f)
