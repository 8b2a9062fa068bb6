#!/usr/bin/env python
"""Prepares FAID for FlashAmbient: the paper's 320x240 / 240x320 copies and split files.

    python datasets/prepare_flash_ambient_faid.py /path/to/FAID $DETECTRON2_DATASETS/faid \
        [--train-list paper_train.txt --test-list paper_test.txt]

Finds every ``<Category>_<id>_flash.*`` / ``_ambient.*`` pair under the source folder, resizes
both images by orientation (INTER_AREA) and writes them as PNG to ``<out>/images/``. Split files
``<out>/splits/{train,test}.txt`` are copied from the given lists (e.g. the paper's 969 / 116
pairs) or, without lists, drawn at random (seed 0) in the paper's 969 : 116 proportion.
"""
import argparse
import os
import random
import shutil
import sys

import cv2
from tqdm import tqdm


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="FAID folder (any layout; files in FAID naming)")
    parser.add_argument("output", help="e.g. $DETECTRON2_DATASETS/faid")
    parser.add_argument("--train-list", help="split file of training pairs")
    parser.add_argument("--test-list", help="split file of test pairs")
    parser.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("LONG", "SHORT"))
    args = parser.parse_args(argv)
    if bool(args.train_list) != bool(args.test_list):
        parser.error("give both --train-list and --test-list, or neither")

    from flash_ambient.data import find_pairs, resize_by_orientation

    pairs = find_pairs(args.source)
    if not pairs:
        sys.exit(f"error: no <Category>_<id>_flash / _ambient pairs under {args.source}")
    os.makedirs(os.path.join(args.output, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.output, "splits"), exist_ok=True)
    written, failed = [], []
    for name, entry in tqdm(pairs.items(), desc="resizing FAID pairs"):
        images = {k: cv2.imread(entry[k], cv2.IMREAD_COLOR) for k in ("flash", "ambient")}
        if any(img is None for img in images.values()):
            failed.append(name)
            continue
        for kind, img in images.items():
            out = resize_by_orientation(img, tuple(args.size))
            cv2.imwrite(os.path.join(args.output, "images", f"{name}_{kind}.png"), out)
        written.append(name)
    if failed:
        print(f"warning: skipped {len(failed)} unreadable pair(s), e.g. {', '.join(failed[:5])}")

    if args.train_list and args.test_list:
        for split, given in (("train", args.train_list), ("test", args.test_list)):
            shutil.copy(given, os.path.join(args.output, "splits", f"{split}.txt"))
    else:
        shuffled = sorted(written)
        random.Random(0).shuffle(shuffled)
        n_test = round(len(shuffled) * 116 / (969 + 116))
        for split, names in (("test", shuffled[:n_test]), ("train", shuffled[n_test:])):
            with open(os.path.join(args.output, "splits", f"{split}.txt"), "w") as f:
                f.write("\n".join(sorted(names)) + "\n")
    print(f"wrote {len(written)} pairs to {args.output}")


if __name__ == "__main__":
    main()
