#!/usr/bin/env python
"""Side-by-side panels like the paper's Fig. 4: normal / low-light / predictions / ground truth.

    python tools/visualize_lowlight.py --dataset coco_2017_val --synthesize \
        --crf ../shared/data/camera_response --output output/vis \
        --model pretrained=configs/LowLightNL/maskrcnn_R50_FPN_pretrained_coco_lowlight.yaml \
        --model ours=configs/LowLightNL/wnl-eg_R50_FPN_10ep_coco_lowlight.yaml@model_final.pth

Each model sees its images as its config's test loader would: a config with an enhancer
(``INPUT.LOWLIGHT_NL.ENHANCER``, the ``-gamma`` / ``-clahe`` / ``-zerodce`` two-stage baselines;
Zero-DCE++ needs ``INPUT.LOWLIGHT_NL.ZERO_DCE.WEIGHTS``, e.g. as an override after the options)
enhances the low-light image first, and its predictions are drawn on the enhanced image.
``--synthesize`` turns normal-light inputs into low-light ones (seeded by file name, so panels
match the offline dataset made with the same seed and curves); without it the inputs are
already dark (the toy or LIS data) and the first panel is skipped. ``--images DIR`` draws
predictions on a folder of images instead of a registered dataset (no ground truth).
"""
import argparse
import os
from pathlib import Path

import cv2
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.logger import setup_logger
from detectron2.utils.visualizer import Visualizer
from tqdm import tqdm

from d2common.projects import import_all_projects
from d2common.testing import plugin_cfg
from d2common.visualization import panel_grid, save_rgb
from lowlight_nl.predictor import LowLightPredictor
from lowlight_nl.synthesis import LowLightSynthesizer, load_camera_responses


def build_predictor(spec: str, opts):
    """``LABEL=CONFIG[@WEIGHTS]`` -> (label, predictor with the config's enhancer, metadata,
    input format)."""
    label, sep, rest = spec.partition("=")
    if not sep:
        raise SystemExit(f"--model {spec!r} must look like LABEL=CONFIG[@WEIGHTS]")
    config, _, weights = rest.partition("@")
    cfg = plugin_cfg(None, None)
    cfg.merge_from_file(config)
    cfg.merge_from_list(list(opts))
    if weights:
        cfg.MODEL.WEIGHTS = weights
    if not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else "__unused")
    enhancer = cfg.INPUT.LOWLIGHT_NL.ENHANCER
    label = label if enhancer == "none" else f"{label} ({enhancer})"
    return label, LowLightPredictor(cfg), metadata, cfg.INPUT.FORMAT


def iter_inputs(args):
    """Yields (name, RGB image, dataset record or None)."""
    if args.images:
        paths = sorted(
            p for p in Path(args.images).iterdir() if p.suffix.lower() in (".jpg", ".png")
        )
        for p in paths[: args.num]:
            image = cv2.imread(str(p))
            if image is None:
                print(f"warning: cannot read {p}, skipped")
                continue
            yield p.name, image[:, :, ::-1], None
        return
    for record in DatasetCatalog.get(args.dataset)[: args.num]:
        image = cv2.imread(record["file_name"])
        if image is None:
            print(f"warning: cannot read {record['file_name']}, skipped")
            continue
        yield os.path.basename(record["file_name"]), image[:, :, ::-1], record


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="registered dataset to draw images and ground truth from")
    source.add_argument("--images", help="folder of images")
    parser.add_argument("--model", action="append", default=[], help="LABEL=CONFIG[@WEIGHTS]")
    parser.add_argument("--synthesize", action="store_true", help="inputs are normal-light")
    parser.add_argument("--crf", help="DoRF curves for --synthesize (else parametric)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num", type=int, default=8)
    parser.add_argument("--output", default="output/visualize_lowlight")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides for all models")
    args = parser.parse_args()

    setup_logger(name="lowlight_nl")
    import_all_projects()
    models = [build_predictor(spec, args.opts) for spec in args.model]
    synthesizer = LowLightSynthesizer(load_camera_responses(args.crf), seed=args.seed)
    metadata = MetadataCatalog.get(args.dataset) if args.dataset else None
    for name, image, record in tqdm(list(iter_inputs(args)), desc="panels"):
        panels = []
        low = image
        if args.synthesize:
            low, _ = synthesizer(image, key=name)
            panels.append(("normal light", image))
        panels.append(("low light", low))
        for label, predictor, model_meta, fmt in models:
            seen = predictor.enhance(low[:, :, ::-1] if fmt == "BGR" else low)
            instances = predictor.predictor(seen)["instances"].to("cpu")
            seen = seen[:, :, ::-1] if fmt == "BGR" else seen
            drawn = Visualizer(seen, model_meta).draw_instance_predictions(instances).get_image()
            panels.append((label, drawn))
        if record is not None:
            panels.append(
                ("ground truth", Visualizer(low, metadata).draw_dataset_dict(record).get_image())
            )
        save_rgb(
            os.path.join(args.output, Path(name).stem + ".png"),
            panel_grid(panels, columns=len(panels)),
        )
    print(f"panels written to {args.output}")


if __name__ == "__main__":
    main()
