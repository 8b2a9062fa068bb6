#!/usr/bin/env python
"""Assembles and checks the SketchyScene-Matching layout that GRMNet reads.

    python datasets/prepare_sketchyscene_matching.py \
        --sketchyscene /path/to/SketchyScene-7k --matching /path/to/SketchyScene-Matching/data
    python datasets/prepare_sketchyscene_matching.py --check

Links ``{train,val,test}/{DRAWING_GT,CLASS_GT,INSTANCE_GT}`` from the SketchyScene release and
copies ``sentence_instance_{split}.json`` and ``vocab.txt`` from SketchyScene-Matching into
``$DETECTRON2_DATASETS/sketchyscene/`` (see datasets/README.md); ``manifest.json`` there records
the two source folders, and a rerun with other sources refuses unless --overwrite is given.

Then every file the loader and the mapper read is checked: the expression files and the
vocabulary, and per sketch the drawing PNG (fully decoded), the CLASS_GT and INSTANCE_GT
matrices and their sizes against the drawing. Unusable sketches are listed with their reasons and
the exit status is 1; the usable (sketch, expression) pairs are counted per split.
"""
import argparse
import os
import sys
from collections import Counter
from typing import List, Optional, Tuple

from tqdm import tqdm

from d2common.data.validation import BadSampleError, check_same_size, read_image_checked
from d2common.prepare import ManifestMismatch, PrepareRun, atomic_write_bytes

SPLITS = ("train", "val", "test")
SUBDIRS = ("DRAWING_GT", "CLASS_GT", "INSTANCE_GT")


def _link(run: PrepareRun, src: str, dst: str) -> None:
    if not os.path.isdir(src):
        run.failed(src, "folder not found (expected the SketchyScene release layout)")
        return
    if os.path.islink(dst):
        if os.readlink(dst) == src and not run.overwrite:
            run.num_present += 1
            return
        if not run.overwrite:
            run.failed(dst, f"links to {os.readlink(dst)}, not {src} (--overwrite replaces it)")
            return
        os.remove(dst)
    elif os.path.exists(dst):
        run.failed(dst, "exists and is not a link: move it away to link the release")
        return
    os.symlink(src, dst)
    run.wrote(dst)


def _copy(run: PrepareRun, src: str, dst: str) -> None:
    if not os.path.isfile(src):
        run.failed(src, "file not found (expected SketchyScene-Matching's data folder)")
    elif run.needs(dst):
        with open(src, "rb") as f:
            atomic_write_bytes(dst, f.read())
        run.wrote(dst)


def assemble(target: str, sketchyscene: str, matching: str, overwrite: bool = False) -> int:
    """Links and copies the two releases into ``target``; returns the exit status."""
    sketchyscene, matching = os.path.abspath(sketchyscene), os.path.abspath(matching)
    run = PrepareRun(target, {"sketchyscene": sketchyscene, "matching": matching}, overwrite)
    for split in SPLITS:
        os.makedirs(os.path.join(target, split), exist_ok=True)
        for sub in SUBDIRS:
            _link(run, os.path.join(sketchyscene, split, sub), os.path.join(target, split, sub))
        name = f"sentence_instance_{split}.json"
        _copy(run, os.path.join(matching, name), os.path.join(target, name))
    _copy(run, os.path.join(matching, "vocab.txt"), os.path.join(target, "vocab.txt"))
    return run.finish()


def check_sketch(target: str, split: str, key) -> Tuple[list, Tuple[int, int]]:
    """Reads every file of one sketch as the loader and mapper do.

    Returns:
        (instance annotations or None per instance index, (height, width)).

    Raises:
        BadSampleError: naming the file at fault.
    """
    from grmnet.data.sketchyscene import (
        class_gt_path,
        drawing_path,
        instance_gt_path,
        read_instances,
    )

    drawing = drawing_path(target, split, key)
    class_mat, instance_mat = class_gt_path(target, split, key), instance_gt_path(
        target, split, key
    )
    for path in (class_mat, instance_mat):
        if not os.path.isfile(path):
            raise BadSampleError(path, "file not found")
    image = read_image_checked(drawing, format="RGB")
    try:
        annotations, size = read_instances(class_mat, instance_mat)
    except BadSampleError:
        raise
    except Exception as e:  # noqa: BLE001  scipy raises many types on corrupt .mat files
        raise BadSampleError(instance_mat, f"unreadable matrices ({type(e).__name__}: {e})") from e
    check_same_size(image.shape, size, drawing, instance_mat)
    return annotations, size


def check(target: str, splits=SPLITS) -> int:
    """Checks every file the loader reads; prints per split what is usable; returns the status."""
    from grmnet.data.sketchyscene import expressions_path, read_expression_file

    failures: List[Tuple[str, str]] = []
    vocab = os.path.join(target, "vocab.txt")
    if not os.path.isfile(vocab) or os.path.getsize(vocab) == 0:
        failures.append((vocab, "missing or empty vocabulary"))
    for split in splits:
        try:
            entries = read_expression_file(expressions_path(target, split))
        except (OSError, ValueError) as e:
            failures.append((expressions_path(target, split), str(e)))
            continue
        for key, count in Counter(str(e["key"]) for e in entries).items():
            if count > 1:  # its records would share image ids
                failures.append((expressions_path(target, split), f"sketch {key} listed {count}x"))
        bad, pairs, expressions = 0, 0, 0
        for entry in tqdm(entries, desc=f"checking {split}"):
            expressions += len(entry["sen_instIdx_map"])
            try:
                annotations, _ = check_sketch(target, split, entry["key"])
            except BadSampleError as e:
                failures.append((e.path, e.reason))
                bad += 1
                continue
            for indices in entry["sen_instIdx_map"].values():
                pairs += bool(indices) and all(
                    isinstance(i, int) and 0 <= i < len(annotations) and annotations[i] is not None
                    for i in indices
                )
        print(
            f"{split}: {len(entries) - bad} / {len(entries)} sketches readable, "
            f"{pairs} / {expressions} (sketch, expression) pairs usable"
        )
    for path, reason in failures[:20]:
        print(f"  failed: {path}: {reason}")
    if len(failures) > 20:
        print(f"  ... and {len(failures) - 20} more")
    print(f"{target}: {len(failures)} unusable file(s)")
    return 1 if failures else 0


def parse_args(argv: Optional[List[str]] = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sketchyscene", help="SketchyScene release with {split}/DRAWING_GT ...")
    parser.add_argument("--matching", help="folder with sentence_instance_*.json and vocab.txt")
    parser.add_argument("--target", default=None, help="default $DETECTRON2_DATASETS/sketchyscene")
    parser.add_argument(
        "--check", action="store_true", help="only check the assembled layout (link nothing)"
    )
    parser.add_argument(
        "--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to check"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace links and copies made from other sources"
    )
    args = parser.parse_args(argv)
    if not args.check and bool(args.sketchyscene) != bool(args.matching):
        parser.error("give both --sketchyscene and --matching, or neither (or --check)")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Returns the exit status: 1 when a file is unusable, 2 when the sources disagree."""
    args = parse_args(argv)
    target = args.target or os.path.join(
        os.getenv("DETECTRON2_DATASETS", "datasets"), "sketchyscene"
    )
    status = 0
    if args.sketchyscene and args.matching and not args.check:
        try:
            status = assemble(target, args.sketchyscene, args.matching, args.overwrite)
        except ManifestMismatch as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return max(status, check(target, args.splits))


if __name__ == "__main__":
    sys.exit(main())
