#!/usr/bin/env python
"""Builds COCO-low-light: every COCO 2017 image through Lv et al.'s low-light synthesis.

    python datasets/prepare_coco_lowlight.py --crf /path/to/camera_response --workers 8

reads ``$DETECTRON2_DATASETS/coco/{train2017,val2017}`` and
``coco/annotations/instances_{train,val}2017.json`` and writes the same tree under
``$DETECTRON2_DATASETS/coco_lowlight`` (same file names, same annotation JSONs) plus
``coco_lowlight/params_<split>.json`` with each written image's synthesis parameters and
``coco_lowlight/manifest_<split>.json`` with the generation parameters of the split.

Each image is seeded by (``--seed``, file name): a run is reproducible byte for byte, and an
interrupted run resumes where it stopped (files are written atomically; finished files are
skipped). A rerun with other generation parameters (seed, camera responses, quality, source
folder) refuses to mix its images with the existing ones unless ``--overwrite`` is given. Every
image is fully decoded first: a truncated, corrupt or too small image is reported as failed with
its reason while the others are still written, and the exit status is then non-zero.

The script needs numpy, OpenCV and scipy only: it does not import torch or detectron2.
"""
import argparse
import importlib.util
import json
import logging
import os
import sys
from functools import partial
from multiprocessing import Pool
from typing import Dict, List, Optional, Tuple

import cv2
from tqdm import tqdm

from d2common.data.validation import BadSampleError, read_image_checked
from d2common.prepare import ManifestMismatch, PrepareRun, atomic_write_bytes, atomic_write_image

logger = logging.getLogger("prepare_coco_lowlight")

# The RGGB mosaic of the synthesis needs 2x2 pixels.
MIN_SIZE = (2, 2)


def _import_without_package_init(package: str) -> None:
    """Makes ``import <package>.<sub>`` skip ``<package>/__init__.py``.

    ``lowlight_nl/__init__.py`` registers the models, datasets and trainer with detectron2, which
    imports torch and detectron2 (seconds and hundreds of MB); the synthesis uses neither. Only
    done when this file runs as a script, so that importing it elsewhere changes nothing.
    """
    if package in sys.modules:
        return
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise SystemExit(f"{package} is not installed: run `pip install -e .` in the repository")
    sys.modules[package] = importlib.util.module_from_spec(spec)  # __init__ not executed


def synthesize_file(
    file_name: str, src_dir: str, dst_dir: str, quality: int, synthesizer=None
) -> Tuple[str, Optional[str]]:
    """Writes one low-light image (``synthesizer`` defaults to the worker's).

    Returns:
        (file_name, None) when written, (file_name, reason) when the image could not be used.
    """
    src = os.path.join(src_dir, file_name)
    dst = os.path.join(dst_dir, file_name)
    synthesizer = synthesizer or _WORKER_SYNTHESIZER
    try:
        image = read_image_checked(src, format="RGB", min_size=MIN_SIZE)
        out, _ = synthesizer(image, key=file_name)
        jpeg = dst.lower().endswith((".jpg", ".jpeg"))
        params = [cv2.IMWRITE_JPEG_QUALITY, quality] if jpeg else []
        atomic_write_image(dst, out[:, :, ::-1], params)
    except BadSampleError as e:
        return file_name, e.reason
    except Exception as e:  # noqa: BLE001  one bad image must not stop the whole split
        return file_name, f"{type(e).__name__} ({e})"
    return file_name, None


_WORKER_SYNTHESIZER = None


def _init_worker(synthesizer):
    # Passed once per worker instead of with every chunk of file names (the curves are MBs).
    global _WORKER_SYNTHESIZER
    _WORKER_SYNTHESIZER = synthesizer
    cv2.setNumThreads(1)


def _split_params(split: str, args, synthesizer) -> Dict:
    """Everything that changes the images of ``split`` (not --limit, --workers, --quiet)."""
    crf = synthesizer.crf.source
    return {
        "split": split,
        "seed": args.seed,
        "crf": crf if crf == "parametric" else os.path.abspath(crf),
        "ranges": {k: list(v) for k, v in vars(synthesizer.ranges).items()},
        "quality": args.quality,
        "coco_root": os.path.abspath(args.coco_root),
    }


def _check_unmanifested_params(params_path: str, seed: int, crf: str, overwrite: bool) -> None:
    """Output of a version without manifests: compare with its ``params_<split>.json``."""
    if overwrite or not os.path.isfile(params_path):
        return
    with open(params_path) as f:
        old = json.load(f)
    old_crf = old.get("crf")
    old_crf = old_crf if old_crf in (None, "parametric") else os.path.abspath(old_crf)
    if old.get("seed") != seed or old_crf != crf:
        raise ManifestMismatch(
            f"{params_path} describes seed {old.get('seed')!r}, crf {old_crf!r}; this run asks "
            f"for seed {seed!r}, crf {crf!r}. Pass --overwrite to regenerate the split, or choose "
            "another --output."
        )


def prepare_split(split: str, args, synthesizer) -> PrepareRun:
    """Synthesises one split; returns its :class:`PrepareRun` (counts and failures)."""
    src_dir = os.path.join(args.coco_root, split)
    ann_src = os.path.join(args.coco_root, "annotations", f"instances_{split}.json")
    if not os.path.isfile(ann_src):
        raise SystemExit(f"{ann_src} does not exist: is --coco-root a COCO 2017 folder?")
    with open(ann_src) as f:
        file_names = sorted(im["file_name"] for im in json.load(f)["images"])
    if args.limit:
        file_names = file_names[: args.limit]
    params = _split_params(split, args, synthesizer)
    params_path = os.path.join(args.output, f"params_{split}.json")
    manifest = f"manifest_{split}.json"
    if not os.path.isfile(os.path.join(args.output, manifest)):
        _check_unmanifested_params(params_path, args.seed, params["crf"], args.overwrite)
    run = PrepareRun(args.output, params, overwrite=args.overwrite, manifest_name=manifest)

    ann_dst = os.path.join(args.output, "annotations", f"instances_{split}.json")
    if run.overwrite or not os.path.isfile(ann_dst):
        with open(ann_src, "rb") as f:
            atomic_write_bytes(ann_dst, f.read())
    dst_dir = os.path.join(args.output, split)
    os.makedirs(dst_dir, exist_ok=True)
    todo = [fn for fn in file_names if run.needs(os.path.join(dst_dir, fn))]

    work = partial(synthesize_file, src_dir=src_dir, dst_dir=dst_dir, quality=args.quality)
    progress = tqdm(total=len(todo), desc=split, unit="img", disable=args.quiet)
    if args.workers > 1 and len(todo) > 1:
        with Pool(args.workers, initializer=_init_worker, initargs=(synthesizer,)) as pool:
            for result in pool.imap_unordered(work, todo, chunksize=16):
                _book(run, dst_dir, src_dir, *result)
                progress.update()
    else:
        for result in map(partial(work, synthesizer=synthesizer), todo):
            _book(run, dst_dir, src_dir, *result)
            progress.update()
    progress.close()

    from lowlight_nl.synthesis import image_rng

    # The parameters depend on (seed, file name) only, so they are re-derived, not collected.
    images = {
        fn: synthesizer.sample_params(image_rng(args.seed, fn)).as_dict()
        for fn in file_names
        if os.path.isfile(os.path.join(dst_dir, fn))
    }
    payload = {"seed": args.seed, "crf": synthesizer.crf.source, "images": images}
    atomic_write_bytes(params_path, json.dumps(payload).encode())
    return run


def _book(run: PrepareRun, dst_dir: str, src_dir: str, file_name: str, reason: Optional[str]):
    dst = os.path.join(dst_dir, file_name)
    if reason is None:
        run.wrote(dst)
        return
    run.failed(os.path.join(src_dir, file_name), reason)
    if os.path.isfile(dst):  # left by a run with other parameters (--overwrite)
        os.remove(dst)


def parse_args(argv: Optional[List[str]] = None):
    root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[1], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--coco-root",
        default=os.path.join(root, "coco"),
        help="COCO 2017 folder with <split>/ images and annotations/instances_<split>.json",
    )
    parser.add_argument(
        "--output", default=os.path.join(root, "coco_lowlight"), help="folder written to"
    )
    parser.add_argument(
        "--splits", nargs="+", default=["train2017", "val2017"], help="COCO splits to convert"
    )
    parser.add_argument(
        "--crf", help="DoRF 201_CRF_data.mat or its folder (default: the parametric curves)"
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed of the per-image draws")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="parallel processes"
    )
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the copies")
    parser.add_argument(
        "--limit", type=int, default=0, help="first N images per split (0: all; for tests)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="regenerate every image, also when the output was made with other parameters",
    )
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Command line entry; returns the exit status (1 if any image failed, 2 on a refusal).

    Each split's counts and failures end up in ``<output>/manifest_<split>.json``.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    from lowlight_nl.synthesis import LowLightSynthesizer, load_camera_responses

    synthesizer = LowLightSynthesizer(load_camera_responses(args.crf), seed=args.seed)
    status = 0
    for split in args.splits:
        try:
            run = prepare_split(split, args, synthesizer)
        except ManifestMismatch as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        status = max(status, run.finish())
    return status


if __name__ in ("__main__", "__mp_main__"):
    _import_without_package_init("lowlight_nl")
if __name__ == "__main__":
    sys.exit(main())
