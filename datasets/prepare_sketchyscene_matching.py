#!/usr/bin/env python
"""Assembles and checks the SketchyScene-Matching layout that GRMNet reads.

    python datasets/prepare_sketchyscene_matching.py \
        --sketchyscene /path/to/SketchyScene-7k --matching /path/to/SketchyScene-Matching/data

Links ``{train,val,test}/{DRAWING_GT,CLASS_GT,INSTANCE_GT}`` from the SketchyScene release and
copies ``sentence_instance_{split}.json`` and ``vocab.txt`` from SketchyScene-Matching into
``$DETECTRON2_DATASETS/sketchyscene/`` (see datasets/README.md), then reads every
sketch once and reports the usable (sketch, expression) pairs per split.
"""
import argparse
import os
import shutil

from tqdm import tqdm

SPLITS = ("train", "val", "test")
SUBDIRS = ("DRAWING_GT", "CLASS_GT", "INSTANCE_GT")


def assemble(target: str, sketchyscene: str, matching: str) -> None:
    for split in SPLITS:
        os.makedirs(os.path.join(target, split), exist_ok=True)
        for sub in SUBDIRS:
            src = os.path.abspath(os.path.join(sketchyscene, split, sub))
            dst = os.path.join(target, split, sub)
            if not os.path.isdir(src):
                raise SystemExit(f"missing {src}: expected the SketchyScene {split}/{sub} folder")
            if not os.path.exists(dst):
                os.symlink(src, dst)
        name = f"sentence_instance_{split}.json"
        shutil.copy(os.path.join(matching, name), os.path.join(target, name))
    shutil.copy(os.path.join(matching, "vocab.txt"), os.path.join(target, "vocab.txt"))


def check(target: str) -> None:
    from grmnet.data.sketchyscene import (
        class_gt_path,
        expressions_path,
        instance_gt_path,
        read_expression_file,
        read_instances,
    )

    for split in SPLITS:
        entries = read_expression_file(expressions_path(target, split))
        bad, pairs = 0, 0
        for entry in tqdm(entries, desc=f"checking {split}"):
            try:
                anns, _ = read_instances(
                    class_gt_path(target, split, entry["key"]),
                    instance_gt_path(target, split, entry["key"]),
                )
            except Exception:  # reported as a count below
                bad += 1
                continue
            pairs += sum(
                all(0 <= i < len(anns) and anns[i] is not None for i in idx)
                for idx in entry["sen_instIdx_map"].values()
            )
        print(f"{split}: {len(entries) - bad} / {len(entries)} sketches readable, {pairs} pairs")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sketchyscene", help="SketchyScene release with {split}/DRAWING_GT ...")
    parser.add_argument("--matching", help="folder with sentence_instance_*.json and vocab.txt")
    parser.add_argument("--target", default=None, help="default $DETECTRON2_DATASETS/sketchyscene")
    args = parser.parse_args()
    target = args.target or os.path.join(
        os.getenv("DETECTRON2_DATASETS", "datasets"), "sketchyscene"
    )
    if args.sketchyscene and args.matching:
        assemble(target, args.sketchyscene, args.matching)
    check(target)


if __name__ == "__main__":
    main()
