"""Evaluator (one confusion matrix over the set, L1 of the fused image) and repeated evaluation."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model

from overhead_fusion.engine import OverheadFusionTrainer, aggregate_repeats, per_repeat_values
from overhead_fusion.evaluation import OverheadFusionEvaluator


def _one_hot(pred, num_classes=3):
    return torch.nn.functional.one_hot(pred, num_classes).permute(2, 0, 1).float()


def test_evaluator_pools_the_whole_set(tiny_cfg):
    cfg = tiny_cfg()
    # Metadata only (no records to cover): the evaluator checks that tiles are scored once.
    name = "overhead_fusion_test_pooled"
    MetadataCatalog.get(name).set(stuff_classes=["background", "building", "road"])
    ev = OverheadFusionEvaluator(cfg, name)
    ev.reset()
    clean = torch.zeros(3, 2, 2)
    # Batch 1: 4 pixels of class 0, all right. Batch 2: one road pixel, predicted as building.
    gt1, pred1 = torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long)
    gt2 = torch.tensor([[2, 0], [0, 0]])
    pred2 = torch.tensor([[1, 0], [0, 0]])
    fused2 = clean.clone()
    fused2[0, 0, 0], fused2[1, 0, 0], fused2[2, 1, 1] = 0.5, 0.25, 1.0  # |diff| sum: 1.75
    inputs = [{"image_id": i, "sem_seg": gt, "image": clean} for i, gt in (("a", gt1), ("b", gt2))]
    ev.process(inputs[:1], [{"sem_seg": _one_hot(pred1), "fused": clean}])
    ev.process(inputs[1:], [{"sem_seg": _one_hot(pred2), "fused": fused2}])
    res = ev.evaluate()["fusion"]
    assert res["pACC"] == pytest.approx(100 * 7 / 8)
    assert res["IoU-background"] == pytest.approx(100.0)
    assert res["IoU-building"] == pytest.approx(0.0)
    assert res["IoU-road"] == pytest.approx(0.0)
    assert res["mIoU"] == pytest.approx(100 / 3)
    assert res["fwIoU"] == pytest.approx(100 * 7 / 8)
    # The paper's L1: mean over all 2 x 3 x 2 x 2 elements; the RGB sum: mean over 8 pixels.
    assert res["L1"] == pytest.approx(1.75 / 24)
    assert res["L1_rgb_sum"] == pytest.approx(1.75 / 8)
    both = torch.stack([clean, fused2]) - torch.stack([clean, clean])
    assert res["L1"] == pytest.approx(float(both.abs().mean()))


def test_evaluator_rejects_a_class_count_mismatch(tiny_cfg):
    cfg = tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.NUM_CLASSES", "2"])
    with pytest.raises(ValueError, match="NUM_CLASSES"):
        OverheadFusionEvaluator(cfg, "overhead_fusion_toy_val")


def test_aggregate_repeats_mean_and_sample_std():
    runs = [{"fusion": {"mIoU": 40.0, "L1": 0.1}}, {"fusion": {"mIoU": 44.0, "L1": 0.3}}]
    runs.append({"fusion": {"mIoU": 45.0, "L1": 0.2}})
    agg = aggregate_repeats(runs)["fusion"]
    # sample std: sqrt(sum (x - mean)^2 / (n - 1))
    assert agg["mIoU"] == pytest.approx(43.0) and agg["mIoU_std"] == pytest.approx(7**0.5)
    assert agg["L1"] == pytest.approx(0.2) and agg["L1_std"] == pytest.approx(0.1)
    assert "mIoU_std" not in aggregate_repeats(runs[:1])["fusion"]
    assert per_repeat_values(runs) == {
        "fusion": {"mIoU": [40.0, 44.0, 45.0], "L1": [0.1, 0.3, 0.2]}
    }


def test_trainer_test_repeats_with_fresh_artifacts(tiny_cfg):
    cfg = tiny_cfg(
        opts=["TEST.OVERHEAD_FUSION.REPEATS", "2", "MODEL.OVERHEAD_FUSION.FUSION", "mean"]
    )
    model = build_model(cfg).eval()
    res = OverheadFusionTrainer.test(cfg, model)["fusion"]
    for key in ("pACC", "mIoU", "fwIoU", "IoU-road", "L1"):
        assert np.isfinite(res[key]) and key + "_std" in res
    assert res["L1_std"] > 0  # the two repeats drew different artifacts
    again = OverheadFusionTrainer.test(cfg, model)["fusion"]
    assert again["L1"] == pytest.approx(res["L1"])  # and reproducibly so
    saved = json.loads(
        (
            Path(cfg.OUTPUT_DIR) / "inference" / "overhead_fusion_toy_val" / "repeats.json"
        ).read_text()
    )
    values = saved["values"]["fusion"]["L1"]
    assert saved["repeats"] == 2 and len(values) == 2
    assert np.mean(values) == pytest.approx(res["L1"])
    assert np.std(values, ddof=1) == pytest.approx(res["L1_std"])
