"""The referring evaluator: COCO AP with one query per (sketch, expression) record."""

import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, Instances

from d2common.registry import EVALUATOR_REGISTRY
from d2common.testing import plugin_cfg
from grmnet.data.builtin import register_all_sketchyscene_matching


@pytest.fixture
def toy_val(grm_toy_root):
    name = "grmnet_eval_test_val"
    from detectron2.data import MetadataCatalog

    register_all_sketchyscene_matching(str(grm_toy_root))  # no-op for existing names
    root = str(grm_toy_root / "toy" / "grmnet")
    from grmnet.data import load_sketchyscene_matching

    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: load_sketchyscene_matching(root, "val"))
        MetadataCatalog.get(name).set(
            thing_classes=MetadataCatalog.get("grmnet_toy_val").thing_classes
        )
    return name


def _predictions(record, keep=None, extra_box=None):
    anns = record["annotations"] if keep is None else record["annotations"][:keep]
    h, w = record["height"], record["width"]
    inst = Instances((h, w))
    masks = [mask_util.decode(a["segmentation"]).astype(bool) for a in anns]
    boxes = [a["bbox"] for a in anns]
    classes = [a["category_id"] for a in anns]
    if extra_box is not None:
        x1, y1, x2, y2 = extra_box
        m = np.zeros((h, w), bool)
        m[y1:y2, x1:x2] = True
        # ranked first: a confident detection of an object the query does not refer to
        masks.insert(0, m)
        boxes.insert(0, [x1, y1, x2, y2])
        classes.insert(0, classes[0])
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.pred_masks = (
        torch.from_numpy(np.stack(masks)) if masks else torch.zeros(0, h, w, dtype=bool)
    )
    inst.pred_classes = torch.tensor(classes, dtype=torch.long)
    inst.scores = torch.linspace(0.9, 0.5, len(classes))
    return {"instances": inst}


def _evaluate(name, tmp_path, make):
    cfg = plugin_cfg("configs/GRMNet/demo.yaml")
    evaluator = EVALUATOR_REGISTRY.get("GRMReferringEvaluator")(cfg, name, str(tmp_path))
    evaluator.reset()
    records = DatasetCatalog.get(name)
    for record in records:
        evaluator.process([{"image_id": record["image_id"]}], [make(record)])
    return evaluator.evaluate()


def test_perfect_predictions_score_100(toy_val, tmp_path):
    results = _evaluate(toy_val, tmp_path, _predictions)
    assert results["segm"]["AP"] == pytest.approx(100.0)
    assert results["bbox"]["AP50"] == pytest.approx(100.0)


def test_missing_and_unreferred_instances_lower_ap(toy_val, tmp_path):
    # Keep only the first referred instance: multi-instance queries lose recall.
    partial = _evaluate(toy_val, tmp_path / "a", lambda r: _predictions(r, keep=1))
    assert partial["segm"]["AP"] < 100.0
    # Perfect referred instances plus a high-scoring instance the query does not refer to.
    extra = _evaluate(toy_val, tmp_path / "b", lambda r: _predictions(r, extra_box=(0, 0, 20, 20)))
    assert extra["segm"]["AP"] < 100.0


def test_no_predictions_give_ap_zero_not_nan(toy_val, tmp_path):
    """The found case: a model that predicts nothing scored segm AP NaN; every referred
    instance is missed, so AP is 0."""
    results = _evaluate(toy_val, tmp_path / "ours", lambda r: _predictions(r, keep=0))
    for task in ("bbox", "segm"):
        assert results[task] and all(v == 0.0 for v in results[task].values())
    assert results["records"]["evaluated"] == len(DatasetCatalog.get(toy_val))
    from detectron2.evaluation import COCOEvaluator

    stock = COCOEvaluator(toy_val, tasks=("bbox", "segm"), output_dir=str(tmp_path / "stock"))
    stock.reset()
    for record in DatasetCatalog.get(toy_val):
        stock.process([{"image_id": record["image_id"]}], [_predictions(record, keep=0)])
    assert math.isnan(stock.evaluate()["segm"]["AP"])  # what was reported before
