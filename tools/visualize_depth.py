#!/usr/bin/env python
"""Image, predicted depth, GT depth and cluster memberships (argmax of A1, the paper's Fig. 4).

    python tools/visualize_depth.py --config-file configs/ICMDepth/demo.yaml \
        --weights output/icm_depth_demo/model_final.pth \
        --compare-config configs/ICMDepth/demo_no_icm.yaml \
        --compare-weights output/icm_depth_demo_no_icm/model_final.pth --output vis/

Without ``--dataset`` the config's first test dataset is used.
"""
import argparse
import logging

from d2common.testing import plugin_cfg
from icm_depth.visualization import load_model, visualize_dataset


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True, help="checkpoint of the ICM model")
    p.add_argument("--compare-config", help="config of a model without ICM (same input format)")
    p.add_argument("--compare-weights", help="its checkpoint")
    p.add_argument("--dataset", help="registered dataset (default: the config's first test set)")
    p.add_argument("--num", type=int, default=4, help="number of images")
    p.add_argument("--output", default="output/icm_depth_vis")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    cfg = plugin_cfg(args.config_file, args.opts)
    models = [("with ICM", load_model(cfg, args.weights))]
    if args.compare_config:
        if not args.compare_weights:
            raise SystemExit("--compare-config needs --compare-weights")
        other = plugin_cfg(args.compare_config, args.opts)
        models.append(("without ICM", load_model(other, args.compare_weights)))
    dataset = args.dataset or cfg.DATASETS.TEST[0]
    for path in visualize_dataset(cfg, models, dataset, args.output, args.num):
        print(path)


if __name__ == "__main__":
    main()
