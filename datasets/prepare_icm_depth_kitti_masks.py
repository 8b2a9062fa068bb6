#!/usr/bin/env python
"""Writes pseudo instance masks for KITTI (the paper's substitute for GT instances).

Runs any detectron2 instance-segmentation model over the images of an Eigen split file and writes
one uint16 id PNG per image to ``$DETECTRON2_DATASETS/kitti/instances/<image rel path>`` (0 =
background, 1..M = instances; higher-scoring masks win overlaps). The paper used
Mask2Former; a COCO Mask R-CNN from detectron2's model zoo works the same way:

    python datasets/prepare_icm_depth_kitti_masks.py \
        --config-file path/to/mask_rcnn_R_50_FPN_3x.yaml --weights path/to/model_final.pkl \
        --split datasets/kitti/splits/eigen_train_files_with_gt.txt

Masks are written atomically and existing ones are kept, so an interrupted run resumes;
``instances/manifest.json`` records the model and thresholds, and a rerun with others refuses to
mix masks unless --overwrite is given. Every image is fully decoded first: an unreadable one fails
with its reason while the others are processed, and the exit status is then 1.
"""
import argparse
import os
import sys
from typing import Callable, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from d2common.data.validation import BadSampleError, read_image_checked
from d2common.prepare import ManifestMismatch, PrepareRun, atomic_write_image

# COCO "thing" classes that are moving road obstacles: person, bicycle, car, motorcycle, bus,
# train, truck.
ROAD_OBSTACLES = (0, 1, 2, 3, 5, 6, 7)


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


def build_predictor(args) -> Predictor:
    """The detectron2 model of ``--config-file`` / ``--weights`` as a :data:`Predictor`."""
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor

    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(["MODEL.WEIGHTS", args.weights] + args.opts)
    predictor = DefaultPredictor(cfg)

    def predict(image):
        inst = predictor(image)["instances"].to("cpu")
        return inst.pred_masks.numpy(), inst.scores.numpy(), inst.pred_classes.numpy()

    return predict


def write_mask(image_path: str, out_path: str, predict: Predictor, args) -> None:
    """Predicts and writes one id PNG. Raises BadSampleError naming the file."""
    image = read_image_checked(image_path, format="BGR")
    masks, scores, classes = predict(image)
    masks = np.asarray(masks, bool)
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"the model gave masks of shape {masks.shape} for an {image.shape} image")
    keep = None if args.all_classes else ROAD_OBSTACLES
    ids = instances_to_id_map(
        masks, np.asarray(scores), np.asarray(classes), args.score_thresh, keep
    )
    atomic_write_image(out_path, ids)


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
    }
    try:
        run = PrepareRun(os.path.join(args.root, "instances"), params, args.overwrite)
    except ManifestMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with open(args.split) as f:
        images = [line.split()[0] for line in f if line.strip()]
    todo = [r for r in images if run.needs(os.path.join(args.root, "instances", r))]
    predict = predict or (build_predictor(args) if todo else None)
    for rel in tqdm(todo, desc="pseudo masks"):
        out_path = os.path.join(args.root, "instances", rel)
        try:
            write_mask(os.path.join(args.root, "raw", rel), out_path, predict, args)
        except BadSampleError as e:
            run.failed(e.path, e.reason)
            continue
        except Exception as e:  # noqa: BLE001  one bad image must not stop the whole split
            run.failed(os.path.join(args.root, "raw", rel), f"{type(e).__name__} ({e})")
            continue
        run.wrote(out_path)
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
