#!/usr/bin/env python
"""Builds COCO-low-light: every COCO 2017 image through Lv et al.'s low-light synthesis.

    python datasets/prepare_coco_lowlight.py --crf /path/to/camera_response --workers 8

reads ``$DETECTRON2_DATASETS/coco/{train2017,val2017}`` and
``coco/annotations/instances_{train,val}2017.json`` and writes the same tree under
``$DETECTRON2_DATASETS/coco_lowlight`` (same file names, same annotation JSONs) plus
``coco_lowlight/params_<split>.json`` with each image's synthesis parameters.

Each image is seeded by (``--seed``, file name): a run is reproducible byte for byte, and an
interrupted run resumes where it stopped (finished files are skipped; files are written
atomically). Unreadable images are skipped with a warning and counted.
"""
import argparse
import json
import logging
import os
import shutil
import sys
from functools import partial
from multiprocessing import Pool

import cv2
from tqdm import tqdm

from lowlight_nl.synthesis import LowLightSynthesizer, image_rng, load_camera_responses

logger = logging.getLogger("prepare_coco_lowlight")


def synthesize_file(file_name, src_dir, dst_dir, synthesizer, quality):
    """Writes one low-light image. Returns (file_name, status) with status in done/skip/error."""
    dst = os.path.join(dst_dir, file_name)
    if os.path.exists(dst):
        return file_name, "skip"
    image = cv2.imread(os.path.join(src_dir, file_name), cv2.IMREAD_COLOR)
    if image is None:
        return file_name, "error"
    out, _ = synthesizer(image[:, :, ::-1], key=file_name)
    tmp = dst + ".tmp" + os.path.splitext(dst)[1]
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if dst.lower().endswith((".jpg", ".jpeg")) else []
    if not cv2.imwrite(tmp, out[:, :, ::-1], params):
        return file_name, "error"
    os.replace(tmp, dst)
    return file_name, "done"


def _init_worker():
    cv2.setNumThreads(1)


def prepare_split(split, args, synthesizer):
    src_dir = os.path.join(args.coco_root, split)
    ann_src = os.path.join(args.coco_root, "annotations", f"instances_{split}.json")
    if not os.path.isfile(ann_src):
        raise SystemExit(f"{ann_src} does not exist: is --coco-root a COCO 2017 folder?")
    with open(ann_src) as f:
        file_names = sorted(im["file_name"] for im in json.load(f)["images"])
    if args.limit:
        file_names = file_names[: args.limit]
    dst_dir = os.path.join(args.output, split)
    os.makedirs(dst_dir, exist_ok=True)
    os.makedirs(os.path.join(args.output, "annotations"), exist_ok=True)
    ann_dst = os.path.join(args.output, "annotations", f"instances_{split}.json")
    if not os.path.exists(ann_dst) or os.path.getsize(ann_dst) != os.path.getsize(ann_src):
        shutil.copyfile(ann_src, ann_dst + ".tmp")
        os.replace(ann_dst + ".tmp", ann_dst)

    work = partial(
        synthesize_file, src_dir=src_dir, dst_dir=dst_dir, synthesizer=synthesizer,
        quality=args.quality,
    )  # fmt: skip
    counts = {"done": 0, "skip": 0, "error": 0}
    progress = tqdm(total=len(file_names), desc=split, unit="img", disable=args.quiet)
    if args.workers > 1:
        with Pool(args.workers, initializer=_init_worker) as pool:
            results = pool.imap_unordered(work, file_names, chunksize=16)
            for file_name, status in results:
                counts[status] += 1
                if status == "error":
                    logger.warning("could not read or write %s, skipped", file_name)
                progress.update()
    else:
        for file_name, status in map(work, file_names):
            counts[status] += 1
            if status == "error":
                logger.warning("could not read or write %s, skipped", file_name)
            progress.update()
    progress.close()

    # The parameters depend on (seed, file name) only, so they are re-derived, not collected.
    params = {
        fn: synthesizer.sample_params(image_rng(args.seed, fn)).as_dict() for fn in file_names
    }
    with open(os.path.join(args.output, f"params_{split}.json"), "w") as f:
        json.dump({"seed": args.seed, "crf": synthesizer.crf.source, "images": params}, f)
    logger.info("%s: %d written, %d already there, %d unreadable skipped", split,
                counts["done"], counts["skip"], counts["error"])  # fmt: skip
    return counts


def parse_args(argv=None):
    root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--coco-root", default=os.path.join(root, "coco"))
    parser.add_argument("--output", default=os.path.join(root, "coco_lowlight"))
    parser.add_argument("--splits", nargs="+", default=["train2017", "val2017"])
    parser.add_argument("--crf", help="DoRF 201_CRF_data.mat or its folder (else parametric)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the copies")
    parser.add_argument("--limit", type=int, default=0, help="first N images per split (tests)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    synthesizer = LowLightSynthesizer(load_camera_responses(args.crf), seed=args.seed)
    return {split: prepare_split(split, args, synthesizer) for split in args.splits}


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
