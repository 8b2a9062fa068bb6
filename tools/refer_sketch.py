#!/usr/bin/env python
"""Segments the instances of a scene sketch that an expression refers to, with GRMNet.

    python tools/refer_sketch.py --config-file configs/GRMNet/demo.yaml \
        --image datasets/toy/grmnet/val/DRAWING_GT/L0_sample10001.png \
        --expression "the two cars on the left" --output out.png \
        MODEL.WEIGHTS output/grmnet_demo/model_final.pth

Writes one panel per expression: the sketch, the referred instances (mask, box, class, score)
and the GRM references of one RoI (``--roi``: index among the shown detections, default the top
one), with each reference's rank and objectness probability (like Fig. 5 of the paper).
"""
import argparse
import logging
import os
import sys

import cv2
from detectron2.data import MetadataCatalog

from d2common.engine import resolve_device
from d2common.projects import get_plugin_cfg, import_all_projects
from d2common.visualization import panel_grid, save_rgb


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--image", required=True, help="sketch image (PNG / JPEG)")
    parser.add_argument("--expression", required=True, action="append", help="may repeat")
    parser.add_argument("--output", required=True, help="output PNG (one per expression: _<n>)")
    parser.add_argument("--score-thresh", type=float, default=0.5)
    parser.add_argument("--roi", type=int, default=0, help="detection whose references to draw")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    import_all_projects()
    from grmnet.predictor import ReferringPredictor
    from grmnet.visualize import draw_instances, draw_references

    cfg = get_plugin_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    resolve_device(cfg)
    if not cfg.MODEL.WEIGHTS:
        sys.exit("refer_sketch.py: set MODEL.WEIGHTS to a trained GRMNet checkpoint")
    image = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if image is None:
        sys.exit(f"refer_sketch.py: cannot read image {args.image}")
    names = MetadataCatalog.get((cfg.DATASETS.TEST or cfg.DATASETS.TRAIN)[0]).thing_classes
    predictor = ReferringPredictor(cfg)
    root, ext = os.path.splitext(args.output)
    for n, expression in enumerate(args.expression):
        result = predictor(image, expression)
        shown = result.instances[result.instances.scores >= args.score_thresh]
        panels = [(expression, result.image)]
        panels.append(("referred", draw_instances(result.image, shown, names, args.score_thresh)))
        if len(shown) > args.roi:
            box = shown.pred_boxes.tensor[args.roi]
            refs, probs = predictor.references(result, box)
            panels.append(
                (f"references of #{args.roi}", draw_references(result.image, box, refs, probs))
            )
        path = args.output if len(args.expression) == 1 else f"{root}_{n}{ext or '.png'}"
        save_rgb(path, panel_grid(panels, columns=3, height=384))
        labels = [names[int(c)] for c in shown.pred_classes]
        print(f"{expression!r}: {len(shown)} instance(s) {labels} -> {path}")


if __name__ == "__main__":
    main()
