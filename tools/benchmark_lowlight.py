#!/usr/bin/env python
"""Throughput of the Lv et al. low-light synthesis on one process (images / s).

    python tools/benchmark_lowlight.py --images ../shared/data/tiny_coco/val2017 \
        --crf ../shared/data/camera_response --json output/benchmark_lowlight.json

Without ``--images`` it synthesises random 640x480 images (COCO's typical size).
``--reference N`` also times, on N images, the algorithm as the paper's first author implemented
it (uint8 truncation after each darkening step, cubic interpolation of the curve with scipy,
bilinear demosaic), for the speed-up figure. Its demosaic is colour-demosaicing's
``demosaicing_CFA_Bayer_bilinear`` (what that implementation calls) when the package is
importable (it is not a dependency of this repository: ``pip install colour-demosaicing``), else
the same convolutions in numpy / scipy (:func:`bilinear_demosaic_rggb`); ``--demosaic`` forces
one.
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


def bilinear_demosaic_rggb(raw: np.ndarray) -> np.ndarray:
    """(H, W) RGGB mosaic -> (H, W, 3) float64 RGB by bilinear interpolation, as
    colour-demosaicing's ``demosaicing_CFA_Bayer_bilinear``: each channel's samples convolved
    with ``[[0,1,0],[1,4,1],[0,1,0]] / 4`` (G) or ``[[1,2,1],[2,4,2],[1,2,1]] / 4`` (R, B),
    scipy's "reflect" borders."""
    from scipy.ndimage import convolve

    raw = np.asarray(raw, dtype=np.float64)
    red = np.zeros(raw.shape)
    red[0::2, 0::2] = 1
    blue = np.zeros(raw.shape)
    blue[1::2, 1::2] = 1
    green = 1 - red - blue
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4
    channels = [convolve(raw * red, k_rb), convolve(raw * green, k_g), convolve(raw * blue, k_rb)]
    return np.stack(channels, axis=-1)


def colour_demosaic_rggb(raw: np.ndarray) -> np.ndarray:
    """colour-demosaicing's bilinear demosaic (ImportError when it is not installed)."""
    from colour_demosaicing import demosaicing_CFA_Bayer_bilinear

    return demosaicing_CFA_Bayer_bilinear(raw, "RGGB")


def pick_demosaic(name: str):
    """ "colour", "numpy" or "auto" (colour when importable) -> (name, function)."""
    if name in ("auto", "colour"):
        try:
            import colour_demosaicing  # noqa: F401

            return "colour-demosaicing", colour_demosaic_rggb
        except ImportError:
            if name == "colour":
                raise SystemExit("--demosaic colour: pip install colour-demosaicing") from None
    return "numpy/scipy convolutions", bilinear_demosaic_rggb


def reference_synthesis(image, crf, params, rng, demosaic=bilinear_demosaic_rggb):
    """The first author's algorithm: uint8 truncation after each darkening step, cubic
    interpolation of the curve, RGGB mosaic, noise, bilinear ``demosaic``, uint8."""
    from scipy.interpolate import interp1d

    x = image.astype(np.float64) / 255
    x = np.floor(params.alpha * x * 255) / 255
    x = np.floor(params.beta * x**params.gamma * 255) / 255
    b, first = np.unique(crf.brightness[params.camera], return_index=True)
    inverse = interp1d(b, crf.irradiance[params.camera][first], "cubic")
    irr = np.clip(inverse(np.clip(x, 0, 1)), 0, 1)
    raw = mosaic_rggb(irr)
    raw = np.clip(raw + rng.normal(0, np.sqrt(raw * params.sig_s**2 + params.sig_c**2)), 0, 1)
    out = np.clip(demosaic(raw), 0, 1)
    forward = interp1d(crf.irradiance[params.camera], crf.brightness[params.camera], "cubic")
    return np.clip(forward(out) * 255, 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", help="folder of RGB images (default: random 640x480)")
    parser.add_argument("--crf", help="DoRF 201_CRF_data.mat or its folder (default: parametric)")
    parser.add_argument("--num-images", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference", type=int, default=0, help="images for the reference run")
    parser.add_argument(
        "--demosaic",
        choices=("auto", "colour", "numpy"),
        default="auto",
        help="demosaic of the reference: colour-demosaicing (auto: when installed) or numpy",
    )
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    images = load_images(args.images, args.num_images)
    synth = LowLightSynthesizer(load_camera_responses(args.crf), seed=0)
    for i, image in enumerate(images[:3]):  # warm the lookup-table caches
        synth(image, key=i)
    start, cpu_start = time.perf_counter(), time.process_time()
    for rep in range(args.repeat):
        for i, image in enumerate(images):
            synth(image, key=(rep, i))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    count = args.repeat * len(images)
    pixels = sum(im.shape[0] * im.shape[1] for im in images) * args.repeat
    result = {
        "images": count,
        "mean_megapixels": pixels / count / 1e6,
        "images_per_s": count / seconds,
        # CPU time of this process: on a shared machine, wall time also counts the waits.
        "images_per_cpu_s": count / cpu_seconds,
        "megapixels_per_s": pixels / seconds / 1e6,
        "crf": synth.crf.source,
    }
    if args.reference:
        rng = np.random.default_rng(0)
        result["reference_demosaic"], demosaic = pick_demosaic(args.demosaic)
        reference_synthesis(images[0], synth.crf, synth.sample_params(rng), rng, demosaic)
        start, cpu_start = time.perf_counter(), time.process_time()
        for image in images[: args.reference]:
            reference_synthesis(image, synth.crf, synth.sample_params(rng), rng, demosaic)
        result["reference_images_per_s"] = args.reference / (time.perf_counter() - start)
        result["reference_images_per_cpu_s"] = args.reference / (time.process_time() - cpu_start)
        result["speedup"] = result["images_per_s"] / result["reference_images_per_s"]
        result["speedup_cpu"] = result["images_per_cpu_s"] / result["reference_images_per_cpu_s"]
    for k, v in result.items():
        print(f"{k:>24}: {v:.3f}" if isinstance(v, float) else f"{k:>24}: {v}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
