#!/usr/bin/env python
"""Throughput of the Lv et al. low-light synthesis on one process (images / s).

    python tools/benchmark_lowlight.py --images ../shared/data/tiny_coco/val2017 \
        --crf ../shared/data/camera_response --json output/benchmark_lowlight.json

Without ``--images`` it synthesises random 640x480 images (COCO's typical size).
``--reference N`` also times a straightforward implementation (uint8 truncation after each
darkening step, per-pixel cubic interpolation of the curve with scipy, bilinear demosaic as a
Python loop over rows) on N images, for the speed-up figure.
"""
import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from lowlight_nl.synthesis import LowLightSynthesizer, load_camera_responses
from lowlight_nl.synthesis.lowlight import mosaic_rggb


def load_images(folder, limit):
    if folder is None:
        rng = np.random.default_rng(0)
        smooth = [cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), np.uint8), (9, 9), 3)]
        return smooth * limit
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".png"))
    images = [cv2.imread(str(p))[:, :, ::-1].copy() for p in paths[:limit]]
    if not images:
        raise SystemExit(f"no .jpg / .png images in {folder}")
    return images


def reference_synthesis(image, crf, params, rng):
    """The straightforward per-pixel version (no lookup tables, Python demosaic loop)."""
    from scipy.interpolate import interp1d

    x = image.astype(np.float64) / 255
    x = np.floor(params.alpha * x * 255) / 255
    x = np.floor(params.beta * x**params.gamma * 255) / 255
    b, first = np.unique(crf.brightness[params.camera], return_index=True)
    inverse = interp1d(b, crf.irradiance[params.camera][first], "cubic")
    irr = np.clip(inverse(np.clip(x, 0, 1)), 0, 1)
    raw = mosaic_rggb(irr)
    raw = np.clip(raw + rng.normal(0, np.sqrt(raw * params.sig_s**2 + params.sig_c**2)), 0, 1)
    h, w = raw.shape
    pad = np.pad(raw, 1, mode="reflect")
    out = np.zeros((h, w, 3))
    for r in range(h):
        for c in range(w):
            cross = (pad[r, c + 1] + pad[r + 2, c + 1] + pad[r + 1, c] + pad[r + 1, c + 2]) / 4
            diag = (pad[r, c] + pad[r, c + 2] + pad[r + 2, c] + pad[r + 2, c + 2]) / 4
            vert = (pad[r, c + 1] + pad[r + 2, c + 1]) / 2
            horiz = (pad[r + 1, c] + pad[r + 1, c + 2]) / 2
            v = pad[r + 1, c + 1]
            if r % 2 == 0 and c % 2 == 0:
                out[r, c] = (v, cross, diag)
            elif r % 2 == 1 and c % 2 == 1:
                out[r, c] = (diag, cross, v)
            elif r % 2 == 0:
                out[r, c] = (horiz, v, vert)
            else:
                out[r, c] = (vert, v, horiz)
    forward = interp1d(crf.irradiance[params.camera], crf.brightness[params.camera], "cubic")
    return np.clip(forward(out) * 255, 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", help="folder of RGB images (default: random 640x480)")
    parser.add_argument("--crf", help="DoRF 201_CRF_data.mat or its folder (default: parametric)")
    parser.add_argument("--num-images", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference", type=int, default=0, help="images for the reference run")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    images = load_images(args.images, args.num_images)
    synth = LowLightSynthesizer(load_camera_responses(args.crf), seed=0)
    for i, image in enumerate(images[:3]):  # warm the lookup-table caches
        synth(image, key=i)
    start = time.perf_counter()
    for rep in range(args.repeat):
        for i, image in enumerate(images):
            synth(image, key=(rep, i))
    seconds = time.perf_counter() - start
    count = args.repeat * len(images)
    pixels = sum(im.shape[0] * im.shape[1] for im in images) * args.repeat
    result = {
        "images": count,
        "mean_megapixels": pixels / count / 1e6,
        "images_per_s": count / seconds,
        "megapixels_per_s": pixels / seconds / 1e6,
        "crf": synth.crf.source,
    }
    if args.reference:
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for image in images[: args.reference]:
            reference_synthesis(image, synth.crf, synth.sample_params(rng), rng)
        result["reference_images_per_s"] = args.reference / (time.perf_counter() - start)
        result["speedup"] = result["images_per_s"] / result["reference_images_per_s"]
    for k, v in result.items():
        print(f"{k:>24}: {v:.3f}" if isinstance(v, float) else f"{k:>24}: {v}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
