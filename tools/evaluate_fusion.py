#!/usr/bin/env python
"""Evaluates an OverheadFusion checkpoint N times with fresh artifacts (the paper: 10) and
reports the mean and standard deviation of every metric.

    python tools/evaluate_fusion.py --config-file configs/OverheadFusion/demo.yaml \
        --weights output/model_final.pth --repeats 10 [--json results.json] [KEY VALUE ...]

Equivalent to ``tools/train_net.py --eval-only ... TEST.OVERHEAD_FUSION.REPEATS N``.
"""
import argparse
import json
import os

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils.logger import setup_logger

from d2common.engine import trainer_class
from d2common.testing import plugin_cfg


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--repeats", type=int, default=10, help="evaluations with fresh artifacts")
    p.add_argument("--json", default="", help="write the results to this JSON file")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = p.parse_args(argv)
    setup_logger()
    opts = ["TEST.OVERHEAD_FUSION.REPEATS", str(args.repeats)] + list(args.opts)
    cfg = plugin_cfg(os.path.abspath(args.config_file), opts)
    trainer_cls = trainer_class(cfg)
    model = trainer_cls.build_model(cfg).eval()
    DetectionCheckpointer(model).load(args.weights)
    results = trainer_cls.test(cfg, model)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
