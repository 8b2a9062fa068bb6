#!/usr/bin/env python
"""Draws OverheadFusion results like the paper's Figs. 6-7: every view with its relative quality
map, the fused image, the clean image, the prediction and the ground truth.

    python tools/visualize_fusion.py --config-file configs/OverheadFusion/demo.yaml \
        --weights output/model_final.pth --output vis/ --num 8 [KEY VALUE ...]
"""
import argparse
import logging
import os

import torch
import tqdm
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.logger import setup_logger

from d2common.engine import trainer_class
from d2common.testing import plugin_cfg
from d2common.visualization import save_rgb
from overhead_fusion.engine import resolve_dataset
from overhead_fusion.visualize import fusion_figure


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True, help="checkpoint (model_final.pth)")
    p.add_argument("--dataset", default="", help="registered dataset (default: DATASETS.TEST[0])")
    p.add_argument("--output", required=True, help="folder for the PNG figures")
    p.add_argument("--num", type=int, default=8, help="number of samples to draw")
    p.add_argument("--repeat", type=int, default=0, help="artifact draw (evaluation repeat index)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logger(name="overhead_fusion")
    cfg = plugin_cfg(os.path.abspath(args.config_file), args.opts)
    cfg.MODEL.WEIGHTS = args.weights
    trainer_cls = trainer_class(cfg)
    model = trainer_cls.build_model(cfg).eval()
    DetectionCheckpointer(model).load(args.weights)
    # The config's folder datasets (e.g. reproduce_fusion.py's road folds) and no-data variant.
    dataset = resolve_dataset(cfg, args.dataset or cfg.DATASETS.TEST[0])
    mapper = trainer_cls.build_dataset_mapper(cfg, False)
    mapper.repeat = args.repeat
    colors = torch.tensor(MetadataCatalog.get(dataset).stuff_colors, dtype=torch.uint8).numpy()
    records = DatasetCatalog.get(dataset)[: args.num]
    for k, record in enumerate(tqdm.tqdm(records, desc="figures")):
        inputs = mapper(record)
        if inputs is None:
            continue
        with torch.no_grad():
            output = model([inputs])[0]
        name = f"{k:03d}_{record['image_id']}.png"
        save_rgb(os.path.join(args.output, name), fusion_figure(inputs, output, colors))
    logging.getLogger("overhead_fusion").info("Wrote %d figures to %s", len(records), args.output)


if __name__ == "__main__":
    main()
