#!/usr/bin/env python
"""Writes pseudo instance masks for KITTI (the paper's substitute for GT instances).

Runs any detectron2 instance-segmentation model over the images of an Eigen split file and writes
one uint16 id PNG per image to ``$DETECTRON2_DATASETS/kitti/instances/<image rel path>`` (0 =
background, 1..M = instances; higher-scoring masks win overlaps). The paper used
Mask2Former; a COCO Mask R-CNN from detectron2's model zoo works the same way:

    python datasets/prepare_icm_depth_kitti_masks.py \
        --config-file path/to/mask_rcnn_R_50_FPN_3x.yaml --weights path/to/model_final.pkl \
        --split datasets/kitti/splits/eigen_train_files_with_gt.txt
"""
import argparse
import os

import cv2
import numpy as np
from tqdm import tqdm

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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, help="detectron2 instance-segmentation config")
    p.add_argument("--weights", required=True)
    p.add_argument("--split", required=True, help="Eigen split file (BTS format)")
    p.add_argument(
        "--root", default=os.path.join(os.getenv("DETECTRON2_DATASETS", "datasets"), "kitti")
    )
    p.add_argument("--score-thresh", type=float, default=0.5)
    p.add_argument("--all-classes", action="store_true", help="keep every predicted class")
    p.add_argument("opts", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)

    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor

    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(["MODEL.WEIGHTS", args.weights] + args.opts)
    predictor = DefaultPredictor(cfg)
    with open(args.split) as f:
        images = [line.split()[0] for line in f if line.strip()]
    written = failed = 0
    for rel in tqdm(images, desc="pseudo masks"):
        out_path = os.path.join(args.root, "instances", rel)
        if os.path.exists(out_path):
            continue
        image = cv2.imread(os.path.join(args.root, "raw", rel))
        if image is None:
            failed += 1
            continue
        inst = predictor(image)["instances"].to("cpu")
        ids = instances_to_id_map(
            inst.pred_masks.numpy(),
            inst.scores.numpy(),
            inst.pred_classes.numpy(),
            args.score_thresh,
            None if args.all_classes else ROAD_OBSTACLES,
        )
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        cv2.imwrite(out_path, ids)
        written += 1
    print(f"wrote {written} masks, {failed} unreadable images skipped")


if __name__ == "__main__":
    main()
