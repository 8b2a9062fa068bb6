#!/usr/bin/env python
"""Segments the instances of a scene sketch that an expression refers to, with GRMNet.

    python tools/refer_sketch.py --config-file configs/GRMNet/demo.yaml \
        --image datasets/toy/grmnet/val/DRAWING_GT/L0_sample10001.png \
        --expression "the two cars on the left" --output out.png \
        MODEL.WEIGHTS output/grmnet_demo/model_final.pth

Writes one panel per expression: the sketch, the referred instances (mask, box, class, score)
and the GRM references of one detection (``--roi``: index among the shown detections, default
the top one). The references drawn are those of the proposal the box head classified into that
detection (solid red "RoI"; the regressed detection is the thin dashed orange box), each with its
rank and objectness probability, like Fig. 5 of the paper.

Only the config and the checkpoint are needed: the vocabulary and category names are read from
the checkpoint, no dataset is loaded. Words the model does not know are listed (read as <unk>).
"""
import argparse
import logging
import os
import sys

import cv2

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
    predictor = ReferringPredictor(cfg)
    names = predictor.class_names
    root, ext = os.path.splitext(args.output)
    for n, expression in enumerate(args.expression):
        result = predictor(image, expression)
        shown = result.select(result.instances.scores >= args.score_thresh)
        panels = [(expression, result.image)]
        referred = draw_instances(result.image, shown.instances, names, args.score_thresh)
        panels.append(("referred", referred))
        if len(shown.instances) > args.roi:
            box = predictor.classified_proposal(shown, args.roi)
            refs, probs = predictor.references(result, box)
            drawing = draw_references(
                result.image, box, refs, probs, shown.instances.pred_boxes.tensor[args.roi]
            )
            panels.append((f"references of #{args.roi} (its proposal)", drawing))
        path = args.output if len(args.expression) == 1 else f"{root}_{n}{ext or '.png'}"
        save_rgb(path, panel_grid(panels, columns=3, height=referred.shape[0]))
        labels = [names[int(c)] for c in shown.instances.pred_classes]
        unknown = f" (unknown words: {', '.join(result.unknown_words)})" * bool(
            result.unknown_words
        )
        print(f"{expression!r}: {len(shown.instances)} instance(s) {labels}{unknown} -> {path}")


if __name__ == "__main__":
    main()
