#!/usr/bin/env python
"""Writes pseudo instance masks for KITTI (the paper's substitute for GT instances).

Runs any detectron2 instance-segmentation model over the images of an Eigen split file and writes
one uint16 id PNG per image to ``$DETECTRON2_DATASETS/kitti/instances/<image rel path>`` (0 =
background, 1..M = instances; higher-scoring masks win overlaps). A COCO Mask R-CNN from
detectron2's model zoo:

    python datasets/prepare_icm_depth_kitti_masks.py \
        --config-file path/to/mask_rcnn_R_50_FPN_3x.yaml --weights path/to/model_final.pkl \
        --split datasets/kitti/splits/eigen_train_files_with_gt.txt

The paper's segmenter, Mask2Former, adds its own config keys: name the functions that add them
with --config-extension (module:function, in the order Mask2Former's train_net.py calls them,
with Mask2Former importable):

    python datasets/prepare_icm_depth_kitti_masks.py \
        --config-extension detectron2.projects.deeplab:add_deeplab_config \
        --config-extension mask2former:add_maskformer2_config \
        --config-file Mask2Former/configs/coco/instance-segmentation/swin/\
maskformer2_swin_large_IN21k_384_bs16_100ep.yaml --weights model_final_e5f453.pkl \
        --split datasets/kitti/splits/eigen_train_files_with_gt.txt

Per-frame statistics (detections, instances kept, classes, covered fraction) go to
``instances/instance_stats.json`` and a summary of instances per frame is printed.

Masks are written atomically and existing ones are kept, so an interrupted run resumes;
``instances/manifest.json`` records the model and thresholds, and a rerun with others refuses to
mix masks unless --overwrite is given. Every image is fully decoded first: an unreadable one fails
with its reason while the others are processed, and the exit status is then 1.
"""
import argparse
import importlib
import json
import os
import sys
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from d2common.data.validation import BadSampleError, read_image_checked
from d2common.prepare import ManifestMismatch, PrepareRun, atomic_write_image, atomic_write_json

# COCO "thing" classes that are moving road obstacles: person, bicycle, car, motorcycle, bus,
# train, truck.
ROAD_OBSTACLES = (0, 1, 2, 3, 5, 6, 7)
STATS_FILE = "instance_stats.json"


def instances_to_id_map(masks, scores, classes, score_thresh=0.5, keep_classes=ROAD_OBSTACLES):
    """(K, H, W) bool masks -> (H, W) uint16 id map; higher-scoring masks win overlaps."""
    masks = np.asarray(masks, bool)
    out = np.zeros(masks.shape[1:], np.uint16)
    keep = [
        k
        for k in np.argsort(-np.asarray(scores), kind="stable")
        if scores[k] >= score_thresh and (keep_classes is None or int(classes[k]) in keep_classes)
    ]
    for new_id, k in enumerate(keep, start=1):
        out[masks[k] & (out == 0)] = new_id
    return out


# (H, W, 3) uint8 BGR image -> ((K, H, W) bool masks, (K,) scores, (K,) COCO class indices).
Predictor = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray, np.ndarray]]


def parse_args(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, help="detectron2 instance-segmentation config")
    p.add_argument(
        "--config-extension",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="function called with the config before --config-file is merged, to add a "
        "project's keys (e.g. mask2former:add_maskformer2_config); repeatable, in order",
    )
    p.add_argument("--weights", required=True, help="checkpoint of that model")
    p.add_argument("--split", required=True, help="Eigen split file (BTS format)")
    p.add_argument(
        "--root",
        default=os.path.join(os.getenv("DETECTRON2_DATASETS", "datasets"), "kitti"),
        help="KITTI root holding raw/ (read) and instances/ (written)",
    )
    p.add_argument("--score-thresh", type=float, default=0.5, help="minimum instance score")
    p.add_argument("--all-classes", action="store_true", help="keep every predicted class")
    p.add_argument(
        "--overwrite", action="store_true", help="rewrite every mask, also from another model"
    )
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return p.parse_args(argv)


def load_config_extensions(specs: List[str]) -> List[Callable]:
    """``["module:function", ...]`` -> the functions. Raises ValueError naming a bad spec."""
    functions = []
    for spec in specs:
        module_name, _, name = spec.partition(":")
        if not module_name or not name:
            raise ValueError(f"--config-extension {spec!r}: expected MODULE:FUNCTION")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ValueError(
                f"--config-extension {spec!r}: cannot import {module_name} ({e})"
            ) from None
        function = getattr(module, name, None)
        if not callable(function):
            raise ValueError(f"--config-extension {spec!r}: {module_name} has no function {name}")
        functions.append(function)
    return functions


def build_cfg(args):
    """detectron2's defaults, extended by each --config-extension, then the config file."""
    from detectron2.config import get_cfg

    cfg = get_cfg()
    for extend in load_config_extensions(args.config_extension):
        extend(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(["MODEL.WEIGHTS", args.weights] + args.opts)
    return cfg


def build_predictor(args) -> Predictor:
    """The detectron2 model of ``--config-file`` / ``--weights`` as a :data:`Predictor`."""
    from detectron2.engine import DefaultPredictor

    predictor = DefaultPredictor(build_cfg(args))

    def predict(image):
        outputs = predictor(image)
        if "instances" not in outputs:
            raise ValueError(
                f"the model returned {sorted(outputs)}, no 'instances': configure it for "
                "instance segmentation (Mask2Former: MODEL.MASK_FORMER.TEST.INSTANCE_ON True)"
            )
        inst = outputs["instances"].to("cpu")
        return inst.pred_masks.numpy(), inst.scores.numpy(), inst.pred_classes.numpy()

    return predict


def frame_stats(ids: np.ndarray, classes: np.ndarray, num_detections: int) -> Dict:
    """Statistics of one written id map: detections, instances kept, their classes, coverage.

    Args:
        ids: (H, W) id map. classes: class index of instance 1..M (in id order).
    """
    per_class: Dict[str, int] = {}
    for c in classes:
        per_class[str(int(c))] = per_class.get(str(int(c)), 0) + 1
    return {
        "detections": int(num_detections),
        "instances": int(ids.max()) if ids.size else 0,
        "classes": per_class,
        "coverage": round(float((ids > 0).mean()), 6) if ids.size else 0.0,
    }


def summarize_stats(stats: Dict[str, Dict]) -> str:
    """One line: frames, instances per frame (mean, median, max), frames without any."""
    counts = np.array([s["instances"] for s in stats.values()], dtype=np.float64)
    if counts.size == 0:
        return "no frames"
    return (
        f"{counts.size} frames: {counts.mean():.2f} instances per frame (median "
        f"{np.median(counts):g}, max {counts.max():g}), {int((counts == 0).sum())} frames "
        "without any"
    )


def write_mask(image_path: str, out_path: str, predict: Predictor, args) -> Dict:
    """Predicts and writes one id PNG; returns its :func:`frame_stats`. Raises BadSampleError
    naming the file."""
    image = read_image_checked(image_path, format="BGR")
    masks, scores, classes = predict(image)
    masks = np.asarray(masks, bool)
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"the model gave masks of shape {masks.shape} for an {image.shape} image")
    keep = None if args.all_classes else ROAD_OBSTACLES
    scores, classes = np.asarray(scores), np.asarray(classes)
    ids = instances_to_id_map(masks, scores, classes, args.score_thresh, keep)
    atomic_write_image(out_path, ids)
    order = [
        k
        for k in np.argsort(-scores, kind="stable")
        if scores[k] >= args.score_thresh and (keep is None or int(classes[k]) in keep)
    ]
    # An instance fully covered by higher-scoring ones leaves no pixel: ids are 1..M of the
    # survivors in score order.
    present = set(np.unique(ids)) - {0}
    kept = [classes[k] for new_id, k in enumerate(order, start=1) if new_id in present]
    return frame_stats(ids, np.asarray(kept), len(scores))


def main(argv: Optional[List[str]] = None, predict: Optional[Predictor] = None) -> int:
    """Returns the exit status (1 if an image failed, 2 on a refusal).

    Args:
        predict: the instance segmenter (default: :func:`build_predictor` of the arguments).
    """
    args = parse_args(argv)
    params = {
        "config_file": os.path.abspath(args.config_file),
        "weights": os.path.abspath(args.weights),
        "opts": args.opts,
        "score_thresh": args.score_thresh,
        "classes": "all" if args.all_classes else list(ROAD_OBSTACLES),
        "config_extensions": args.config_extension,
    }
    try:
        run = PrepareRun(os.path.join(args.root, "instances"), params, args.overwrite)
    except ManifestMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with open(args.split) as f:
        images = [line.split()[0] for line in f if line.strip()]
    todo = [r for r in images if run.needs(os.path.join(args.root, "instances", r))]
    try:
        predict = predict or (build_predictor(args) if todo else None)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stats_path = os.path.join(args.root, "instances", STATS_FILE)
    stats = _load_stats(stats_path) if not args.overwrite else {}
    for rel in tqdm(todo, desc="pseudo masks"):
        out_path = os.path.join(args.root, "instances", rel)
        try:
            stats[rel] = write_mask(os.path.join(args.root, "raw", rel), out_path, predict, args)
        except BadSampleError as e:
            run.failed(e.path, e.reason)
            continue
        except Exception as e:  # noqa: BLE001  one bad image must not stop the whole split
            run.failed(os.path.join(args.root, "raw", rel), f"{type(e).__name__} ({e})")
            continue
        run.wrote(out_path)
    for rel in images:
        out_path = os.path.join(args.root, "instances", rel)
        if rel not in stats and os.path.exists(out_path):
            # A mask of an earlier run without statistics: what the file itself tells.
            ids = read_image_checked(out_path, format=None, apply_exif=False)
            stats[rel] = {**frame_stats(ids, np.zeros(0), 0), "detections": None, "classes": None}
    split_stats = {rel: stats[rel] for rel in images if rel in stats}
    atomic_write_json(stats_path, stats)
    print(f"instances per frame ({args.split}): {summarize_stats(split_stats)}")
    return run.finish()


def _load_stats(path: str) -> Dict[str, Dict]:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


if __name__ == "__main__":
    sys.exit(main())
