#!/usr/bin/env python
"""Prepares FAID for FlashAmbient: the paper's 320x240 / 240x320 copies and split files.

    python datasets/prepare_flash_ambient_faid.py /path/to/FAID $DETECTRON2_DATASETS/faid \
        [--train-list paper_train.txt --test-list paper_test.txt | --dataset-lr DATASET_LR]

Finds every ``<Category>_<id>_flash.*`` / ``_ambient.*`` pair under the source folder, resizes
both images by orientation (INTER_AREA) and writes them as PNG to ``<out>/images/``. Split files
``<out>/splits/{train,test}.txt`` are copied from the given lists (e.g. the paper's 969 / 116
pairs), taken from the pairs under the ``train/`` and ``test/`` folders of the authors'
``DATASET_LR`` (``--dataset-lr``: the only definition of the paper's 969 / 116 split; it can be
the source folder too) or, without either, drawn at random (seed 0) in the paper's 969 : 116
proportion; drawn splits are kept on a rerun (only --overwrite draws them again), so that a pair
that is added later never moves another pair between train and test.

Both images of a pair are fully decoded and must have the same size: a pair with a truncated,
corrupt, too small or mismatched image fails (with its reason) while the others are written, and
the exit status is then 1. ``<out>/manifest.json`` records the generation parameters; a rerun
with other parameters refuses to mix outputs unless --overwrite is given.
"""
import argparse
import os
import random
import sys
from typing import Dict, List, Optional

from tqdm import tqdm

from d2common.data.validation import BadSampleError, read_image_checked
from d2common.prepare import ManifestMismatch, PrepareRun, atomic_write_bytes, atomic_write_image

# The generators pool four times (as the loader's flash_ambient.data.faid.MIN_IMAGE_SIZE).
MIN_SIZE = (16, 16)
KINDS = ("flash", "ambient")


def parse_args(argv: Optional[List[str]] = None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("source", help="FAID folder (any layout; files in FAID naming)")
    parser.add_argument("output", help="e.g. $DETECTRON2_DATASETS/faid")
    parser.add_argument("--train-list", help="split file of training pairs")
    parser.add_argument("--test-list", help="split file of test pairs")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=(320, 240),
        metavar=("LONG", "SHORT"),
        help="output size (long side, short side), orientation kept",
    )
    parser.add_argument(
        "--dataset-lr",
        help="the authors' DATASET_LR folder: its train/ and test/ define the splits",
    )
    parser.add_argument("--overwrite", action="store_true", help="regenerate every output")
    args = parser.parse_args(argv)
    if bool(args.train_list) != bool(args.test_list):
        parser.error("give both --train-list and --test-list, or neither")
    if args.dataset_lr and args.train_list:
        parser.error("give --dataset-lr or --train-list / --test-list, not both")
    return args


def dataset_lr_splits(folder: str) -> Dict[str, List[str]]:
    """{"train": [...], "test": [...]}: the pair names under ``folder/train`` and ``folder/test``.

    Raises:
        FileNotFoundError: a split folder is missing or holds no pair.
        ValueError: a pair is in both splits (named).
    """
    from flash_ambient.data import find_pairs

    splits = {}
    for split in ("train", "test"):
        path = os.path.join(folder, split)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"DATASET_LR split folder {path} not found")
        splits[split] = sorted(find_pairs(path))
        if not splits[split]:
            raise FileNotFoundError(f"no <Category>_<id>_flash / _ambient pairs under {path}")
    both = sorted(set(splits["train"]) & set(splits["test"]))
    if both:
        raise ValueError(f"{folder}: pairs in both train and test: {', '.join(both[:10])}")
    return splits


def prepare_pair(entry: Dict[str, str], out_paths: Dict[str, str], size) -> None:
    """Reads, checks, resizes and writes one pair. Raises BadSampleError naming the file."""
    from flash_ambient.data import resize_by_orientation

    images = {k: read_image_checked(entry[k], format="BGR", min_size=MIN_SIZE) for k in KINDS}
    (fh, fw), (ah, aw) = images["flash"].shape[:2], images["ambient"].shape[:2]
    if (fh, fw) != (ah, aw):  # another photograph, or a rotated copy that a resize would hide
        raise BadSampleError(
            entry["ambient"],
            f"ambient image of size {ah}x{aw} does not match its flash image {entry['flash']} "
            f"of size {fh}x{fw}",
        )
    for kind in KINDS:
        atomic_write_image(out_paths[kind], resize_by_orientation(images[kind], tuple(size)))


def write_splits(args, prepared: List[str], given_splits=None) -> None:
    splits = os.path.join(args.output, "splits")
    if given_splits:
        for split, names in given_splits.items():
            text = "\n".join(names) + "\n"
            atomic_write_bytes(os.path.join(splits, f"{split}.txt"), text.encode())
        return
    if args.train_list:
        for split, given in (("train", args.train_list), ("test", args.test_list)):
            with open(given, "rb") as f:
                atomic_write_bytes(os.path.join(splits, f"{split}.txt"), f.read())
        return
    paths = [os.path.join(splits, f"{s}.txt") for s in ("train", "test")]
    if not args.overwrite and all(os.path.isfile(p) for p in paths):
        listed = set()
        for path in paths:
            with open(path) as f:
                listed.update(line.strip() for line in f if line.strip())
        unlisted = sorted(set(prepared) - listed)
        if unlisted:
            print(
                f"warning: {len(unlisted)} prepared pair(s) are in neither split file, e.g. "
                f"{', '.join(unlisted[:5])}: splits are kept on a rerun (--overwrite draws anew)"
            )
        return
    shuffled = sorted(prepared)
    random.Random(0).shuffle(shuffled)
    n_test = round(len(shuffled) * 116 / (969 + 116))
    for split, names in (("test", shuffled[:n_test]), ("train", shuffled[n_test:])):
        text = "\n".join(sorted(names)) + "\n"
        atomic_write_bytes(os.path.join(splits, f"{split}.txt"), text.encode())


def main(argv: Optional[List[str]] = None) -> int:
    """Returns the exit status: 0, 1 when a pair failed, 2 when nothing could be done."""
    args = parse_args(argv)
    from flash_ambient.data import find_pairs

    try:
        pairs = find_pairs(args.source)
        given_splits = dataset_lr_splits(args.dataset_lr) if args.dataset_lr else None
    except (FileNotFoundError, ValueError) as e:  # no folder; a pair name found twice
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not pairs:
        print(
            f"error: no <Category>_<id>_flash / _ambient pairs under {args.source}", file=sys.stderr
        )
        return 2
    params = {
        "source": os.path.abspath(args.source),
        "size": list(args.size),
        "train_list": args.train_list and os.path.abspath(args.train_list),
        "test_list": args.test_list and os.path.abspath(args.test_list),
    }
    if args.dataset_lr:  # only then, so that earlier manifests still match
        params["dataset_lr"] = os.path.abspath(args.dataset_lr)
    try:
        run = PrepareRun(args.output, params, overwrite=args.overwrite)
    except ManifestMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    prepared = []
    for name, entry in tqdm(pairs.items(), desc="resizing FAID pairs"):
        out = {k: os.path.join(args.output, "images", f"{name}_{k}.png") for k in KINDS}
        if all(os.path.isfile(p) for p in out.values()) and not run.needs(out["flash"]):
            prepared.append(name)  # counted once per pair as already there
            continue
        try:
            prepare_pair(entry, out, args.size)
        except BadSampleError as e:
            run.failed(e.path, e.reason)
            for path in out.values():  # a half of the pair, or left by other parameters
                if os.path.isfile(path):
                    os.remove(path)
            continue
        run.wrote(out["flash"])
        prepared.append(name)
    write_splits(args, prepared, given_splits)
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
