#!/usr/bin/env python
"""Scores a folder of predicted ambient images against the FAID ambients, like the evaluator.

    python tools/evaluate_flash_ambient.py --predictions published/lime \
        --dataset flash_ambient_faid_test --output output/lime_eval

Predictions are matched to pairs by name (``People_014.png``, ``People_014_flash.png`` or
``People_014_flash_output.png``); a pair without a prediction is an error that lists them all.
Targets are read and resized as in testing (the config's ``INPUT.FLASH_AMBIENT.RESIZE``); a
prediction of another size is refused unless ``--resize-predictions``. Writes the evaluator's
``per_image_metrics.csv``, ``evaluation_records.json`` and ``results.json`` to ``--output``.
``--images DIR [--split FILE]`` evaluates a FAID-named folder instead of a registered dataset.
"""
import argparse
import json
import logging
import os
import sys

from d2common.testing import plugin_cfg, repo_root


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", required=True, help="folder of predicted images")
    parser.add_argument("--dataset", default="flash_ambient_faid_test", help="registered dataset")
    parser.add_argument("--images", default=None, help="FAID-named folder (instead of --dataset)")
    parser.add_argument("--split", default=None, help="split file for --images")
    parser.add_argument("--output", required=True, help="folder for the CSV and results")
    parser.add_argument(
        "--config-file",
        default=str(repo_root() / "configs/FlashAmbient/Base-FlashAmbient.yaml"),
        help="config whose INPUT.FLASH_AMBIENT.RESIZE sizes the targets",
    )
    parser.add_argument("--resize-predictions", action="store_true")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from detectron2.data import DatasetCatalog

    from d2common.data import register_dataset_once
    from flash_ambient.data import FlashAmbientDatasetMapper, load_faid_pairs
    from flash_ambient.evaluation.folder import evaluate_folder

    cfg = plugin_cfg(args.config_file, args.opts)
    dataset = args.dataset
    if args.images:
        images, split = os.path.abspath(args.images), args.split and os.path.abspath(args.split)
        dataset = f"flash_ambient_folder:{images}:{split}"
        register_dataset_once(dataset, lambda: load_faid_pairs(images, split, full_decode=True))
    elif dataset not in DatasetCatalog.list():
        sys.exit(f"error: dataset {dataset} is not registered")
    try:
        records = DatasetCatalog.get(dataset)
        mapper = FlashAmbientDatasetMapper(cfg, is_train=False)
        results = evaluate_folder(
            records, mapper, args.predictions, dataset, args.output, args.resize_predictions
        )
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    for name, value in results["flash_ambient"].items():
        print(f"{name}: {value:.4f}")
    return results


if __name__ == "__main__":
    main()
