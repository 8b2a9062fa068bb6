"""ICMDepth metrics and evaluator against hand-computed values and scikit-image."""

import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error

from d2common.data import register_dataset_once
from d2common.evaluation_coverage import EvaluationCoverageError
from d2common.testing import plugin_cfg
from icm_depth.evaluation import (
    ICMDepthEvaluator,
    crop_mask,
    image_depth_stats,
    summarize_depth_stats,
)


def test_hand_computed_metrics():
    gt = np.array([[2.0, 4.0], [10.0, 0.0]])
    pred = np.array([[2.0, 5.0], [20.0, 7.0]])  # last pixel has no GT
    inst = np.array([[True, False], [False, False]])
    s = image_depth_stats(pred, gt, inst)
    out = summarize_depth_stats([s])
    assert out["abs_rel"] == pytest.approx((0 + 0.25 + 1.0) / 3)
    assert out["sq_rel"] == pytest.approx((0 + 1 / 4 + 100 / 10) / 3)
    assert out["delta1"] == pytest.approx(1 / 3)  # 5/4 = 1.25 is not < 1.25
    # ratio 2 fails 1.25^2 = 1.5625 and 1.25^3 = 1.953
    assert out["delta2"] == pytest.approx(2 / 3) and out["delta3"] == pytest.approx(2 / 3)
    assert out["delta1_instance"] == 1.0 and out["delta1_background"] == 0.0
    assert out["rmse"] == pytest.approx(np.sqrt(mean_squared_error(gt[gt > 0], pred[gt > 0])))
    d = np.log([2.0, 5.0, 20.0]) - np.log([2.0, 4.0, 10.0])
    assert out["rmse_log"] == pytest.approx(np.sqrt(np.mean(d**2)))
    assert out["silog"] == pytest.approx(100 * np.sqrt(np.var(d)))


def test_pooled_vs_per_image_aggregation_and_caps():
    a = image_depth_stats(np.full((1, 1), 2.0), np.full((1, 1), 1.0))
    b = image_depth_stats(np.full((1, 3), 3.0), np.full((1, 3), 3.0))
    out = summarize_depth_stats([a, b])
    assert out["abs_rel"] == pytest.approx(1.0 / 4)  # pooled over 4 pixels
    assert out["rmse"] == pytest.approx(0.5)  # mean of per-image 1.0 and 0.0
    capped = image_depth_stats(np.array([[500.0, 50.0]]), np.array([[70.0, 85.0]]), max_depth=80)
    assert capped["n"] == 1 and capped["rmse"] == pytest.approx(10.0)  # pred capped to 80


def test_crops():
    m = crop_mask((375, 1242), "garg")
    rows, cols = np.nonzero(m)
    assert (rows.min(), rows.max() + 1) == (int(0.40810811 * 375), int(0.99189189 * 375))
    assert (cols.min(), cols.max() + 1) == (int(0.03594771 * 1242), int(0.96405229 * 1242))
    assert crop_mask((375, 1242), "eigen")[int(0.3324324 * 375)].any()
    assert crop_mask((4, 4), "none").all()
    with pytest.raises(ValueError, match="crop"):
        crop_mask((4, 4), "bogus")


def test_evaluator_end_to_end_and_kitti_defaults(tmp_path):
    cfg = plugin_cfg("configs/ICMDepth/demo.yaml")
    register_dataset_once("icm_depth_eval_one_record", lambda: [{"image_id": "a"}])
    ev = ICMDepthEvaluator(cfg, "icm_depth_eval_one_record", str(tmp_path))
    assert ev.crop == "none" and ev.max_depth == 80.0
    gt = torch.full((4, 6), 10.0)
    ids = torch.zeros(4, 6, dtype=torch.long)
    ids[:2, :3] = 1
    pred = gt.clone()
    pred[:2, :3] = 20.0  # wrong on the instance only
    ev.reset()
    ev.process([{"image_id": "a", "depth": gt, "instance_ids": ids}], [{"depth": pred}])
    res = ev.evaluate()["depth"]
    assert res["delta1_instance"] == 0.0 and res["delta1_background"] == 1.0
    assert res["delta1"] == pytest.approx(0.75)
    assert (tmp_path / "per_image_metrics.csv").exists()
    with pytest.raises(EvaluationCoverageError, match="1 not scored"):
        ev.reset()
        ev.evaluate()
    kitti = ICMDepthEvaluator(cfg, "icm_depth_kitti_eigen_test", None)
    assert kitti.crop == "garg" and kitti.max_depth == 80.0
    eigen = ICMDepthEvaluator(
        plugin_cfg(None, ["TEST.ICM_DEPTH.CROP", "eigen"]), "icm_depth_kitti_eigen_test"
    )
    assert eigen.crop == "eigen"
