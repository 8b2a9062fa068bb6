"""Ceilings of the position-stratified evaluation: perfect detectors that read only part of the
expression, scored by :class:`GRMReferringEvaluator`.

    python -m grmnet.oracle --dataset grmnet_toy_val [--oracle category] [--output-dir DIR]

- ``referred``: exactly the referred instances (AP 100 on every subset; a sanity check).
- ``category``: every instance of the referents' categories, i.e. a perfect detector that reads
  the category word and nothing else. It scores 100 on "category suffices"; its AP on "needs
  position" is what a model that ignores position words can reach there.

Instances are scored in instance-index order with scores falling from 0.9 to 0.5.
"""

import argparse
import os
from typing import Callable, Dict, List, Optional

import numpy as np
import pycocotools.mask as mask_util
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, Instances

from .data.sketchyscene import read_instances

ORACLES = ("referred", "category")


def _sketch_instances(record: dict) -> List[Optional[dict]]:
    """All annotations of the record's sketch, read from its CLASS_GT / INSTANCE_GT files."""
    split_dir = os.path.dirname(os.path.dirname(record["file_name"]))
    key = record["sketch_id"]
    return read_instances(
        os.path.join(split_dir, "CLASS_GT", f"sample_{key}_class.mat"),
        os.path.join(split_dir, "INSTANCE_GT", f"sample_{key}_instance.mat"),
    )[0]


def as_instances(annotations: List[dict], height: int, width: int) -> Instances:
    """Annotations -> predicted ``Instances`` (boxes, masks, classes, scores 0.9 .. 0.5)."""
    inst = Instances((height, width))
    boxes = [a["bbox"] for a in annotations]
    masks = [mask_util.decode(a["segmentation"]).astype(bool) for a in annotations]
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.pred_masks = (
        torch.from_numpy(np.stack(masks)) if masks else torch.zeros(0, height, width, dtype=bool)
    )
    inst.pred_classes = torch.tensor([a["category_id"] for a in annotations], dtype=torch.long)
    inst.scores = torch.linspace(0.9, 0.5, len(annotations))
    return inst


def oracle_predictor(name: str) -> Callable[[dict], Instances]:
    """record -> the oracle's ``Instances`` (see the module docstring)."""
    if name not in ORACLES:
        raise ValueError(f"oracle {name!r}: use one of {ORACLES}")

    def predict(record):
        chosen = record["annotations"]
        if name == "category":
            named = {a["category_id"] for a in chosen}
            chosen = [
                a for a in _sketch_instances(record) if a is not None and a["category_id"] in named
            ]
        return as_instances(chosen, record["height"], record["width"])

    return predict


def evaluate_oracle(cfg, dataset_name: str, oracle: str, output_dir: str) -> Dict:
    """Scores an oracle on every record of ``dataset_name``; returns the evaluator's results."""
    from .evaluation import GRMReferringEvaluator

    evaluator = GRMReferringEvaluator(cfg, dataset_name, output_dir)
    evaluator.reset()
    predict = oracle_predictor(oracle)
    for record in DatasetCatalog.get(dataset_name):
        x = {"image_id": record["image_id"], "query_type": record.get("query_type")}
        evaluator.process([x], [{"instances": predict(record)}])
    return evaluator.evaluate()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="grmnet_toy_val")
    parser.add_argument("--oracle", default="category", choices=ORACLES)
    parser.add_argument("--config-file", default="configs/GRMNet/demo.yaml")
    parser.add_argument("--output-dir", default="output/grmnet_oracle")
    args = parser.parse_args(argv)
    from d2common.testing import plugin_cfg

    from .data.builtin import prepare_dataset

    prepare_dataset(args.dataset)
    cfg = plugin_cfg(args.config_file)
    results = evaluate_oracle(cfg, args.dataset, args.oracle, args.output_dir)
    counts = results.get("query_types", {})
    for task in ("segm", "segm_category", "segm_position"):
        if task in results:
            n = counts.get(task.partition("_")[2], sum(counts.values()))
            ap = results[task]
            print(f"{task:14s} {int(n):5d} queries  AP {ap['AP']:6.2f}  AP50 {ap['AP50']:6.2f}")
    return results


if __name__ == "__main__":
    main()
