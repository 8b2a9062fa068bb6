#!/usr/bin/env python
"""Image, GT depth, predicted depth (colour bar in metres), abs_rel error map and cluster
memberships (argmax of A1, the paper's Fig. 4) for one model or two (with and without ICM);
``--matches`` adds the ICM loss's Hungarian matches: A1 of each matched cluster beside G of its
instance, at each resolution.

    python tools/visualize_depth.py --config-file configs/ICMDepth/demo.yaml \
        --weights output/icm_depth_demo/model_final.pth \
        --compare-config configs/ICMDepth/demo_no_icm.yaml \
        --compare-weights output/icm_depth_demo_no_icm/model_final.pth --matches --output vis/

Without ``--dataset`` the config's first test dataset is used. Panel labels come from each
config (cluster update, ICM weight) unless ``--label`` / ``--compare-label`` are given. A
missing or empty checkpoint is refused: an untrained model would be drawn.
"""
import argparse
import logging

from d2common.testing import plugin_cfg
from icm_depth.visualization import check_weights, load_model, model_label, visualize_dataset


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True, help="checkpoint of the model (must exist)")
    p.add_argument("--label", help="panel label (default: from the config)")
    p.add_argument("--compare-config", help="config of a second model, e.g. without ICM")
    p.add_argument("--compare-weights", help="its checkpoint (must exist)")
    p.add_argument("--compare-label", help="its panel label (default: from its config)")
    p.add_argument("--dataset", help="registered dataset (default: the config's first test set)")
    p.add_argument("--num", type=int, default=4, help="number of images")
    p.add_argument("--matches", action="store_true", help="also draw the Hungarian matches")
    p.add_argument("--max-pairs", type=int, default=4, help="matched pairs drawn per resolution")
    p.add_argument("--output", default="output/icm_depth_vis")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        check_weights(args.weights, "--weights")
        if args.compare_config:
            if not args.compare_weights:
                raise FileNotFoundError("--compare-config needs --compare-weights")
            check_weights(args.compare_weights, "--compare-weights")
    except FileNotFoundError as e:
        raise SystemExit(f"visualize_depth: {e}") from None
    cfg = plugin_cfg(args.config_file, args.opts)
    models = [(args.label or model_label(cfg), load_model(cfg, args.weights))]
    if args.compare_config:
        other = plugin_cfg(args.compare_config, args.opts)
        label = args.compare_label or model_label(other)
        if label == models[0][0]:
            label += " (compare)"
        models.append((label, load_model(other, args.compare_weights)))
    dataset = args.dataset or cfg.DATASETS.TEST[0]
    paths = visualize_dataset(
        cfg, models, dataset, args.output, args.num, args.matches, args.max_pairs
    )
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main()
