"""ICMDepth metrics and evaluator against hand-computed values and scikit-image."""

import json

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


def test_pooled_vs_per_image_aggregation_hand_computed():
    # a: one pixel, gt 1, pred 2. b: three pixels, gt 3, pred 3, 3, 6.
    a = image_depth_stats(np.full((1, 1), 2.0), np.full((1, 1), 1.0))
    b = image_depth_stats(np.array([[3.0, 3.0, 6.0]]), np.full((1, 3), 3.0))
    per_image = summarize_depth_stats([a, b], "per_image")
    pooled = summarize_depth_stats([a, b], "pooled")
    assert per_image["abs_rel"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert pooled["abs_rel"] == pytest.approx((1.0 + 1.0) / 4)
    assert per_image["delta1"] == pytest.approx((0 + 2 / 3) / 2)
    assert pooled["delta1"] == pytest.approx(2 / 4)
    assert per_image["rmse"] == pytest.approx((1.0 + np.sqrt(3.0)) / 2)
    assert pooled["rmse"] == pytest.approx(np.sqrt((1 + 9) / 4))
    logs = np.log([2.0, 1.0, 1.0, 2.0])
    assert pooled["rmse_log"] == pytest.approx(np.sqrt(np.mean(logs**2)))
    assert pooled["silog"] == pytest.approx(100 * np.sqrt(np.var(logs)))
    assert per_image["silog"] == pytest.approx(100 * np.sqrt(np.var(logs[1:])) / 2)
    # No instance pixels anywhere: nan both ways; an image without valid GT is not averaged in.
    assert np.isnan(per_image["delta1_instance"]) and np.isnan(pooled["delta1_instance"])
    empty = image_depth_stats(np.ones((2, 2)), np.zeros((2, 2)))
    with_empty = summarize_depth_stats([a, b, empty])
    np.testing.assert_equal(list(with_empty.values()), list(per_image.values()))
    with pytest.raises(ValueError, match="aggregation"):
        summarize_depth_stats([a], "mean")


def test_gt_cap_drop_vs_clamp_hand_computed():
    gt = np.array([[70.0, 85.0, 80.0]])
    pred = np.array([[500.0, 50.0, 80.0]])  # the first prediction is clipped to 80
    dropped = image_depth_stats(pred, gt, max_depth=80.0, gt_cap="drop")
    assert dropped["n"] == 1 and dropped["rmse"] == pytest.approx(10.0)
    clamped = image_depth_stats(pred, gt, max_depth=80.0, gt_cap="clamp")
    assert clamped["n"] == 3
    assert clamped["rmse"] == pytest.approx(np.sqrt((10**2 + 30**2 + 0) / 3))
    assert clamped["abs_rel"] == pytest.approx((10 / 70 + 30 / 80 + 0) / 3)
    assert clamped["delta1"] == pytest.approx(2 / 3)  # 80 / 50 = 1.6 fails
    with pytest.raises(ValueError, match="GT cap"):
        image_depth_stats(pred, gt, gt_cap="keep")


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


@pytest.mark.parametrize(
    "dataset, protocol",
    [
        ("icm_depth_kitti_eigen_test", ("garg", "drop", "per_image")),
        ("icm_depth_cityscapes_dvps_val", ("none", "clamp", "per_image")),
        ("icm_depth_semkitti_dvps_val", ("none", "clamp", "per_image")),
        ("icm_depth_toy_val", ("none", "clamp", "per_image")),
    ],
)
def test_protocol_defaults_per_dataset(dataset, protocol):
    ev = ICMDepthEvaluator(plugin_cfg("configs/ICMDepth/demo.yaml"), dataset)
    assert (ev.crop, ev.gt_cap, ev.aggregation) == protocol
    pooled = ICMDepthEvaluator(
        plugin_cfg(
            "configs/ICMDepth/demo.yaml",
            ["TEST.ICM_DEPTH.AGGREGATION", "pooled", "TEST.ICM_DEPTH.GT_CAP", "drop"],
        ),
        dataset,
    )
    assert (pooled.gt_cap, pooled.aggregation) == ("drop", "pooled")


def test_evaluator_reports_its_protocol_and_applies_it(tmp_path):
    register_dataset_once(
        "icm_depth_eval_two_records", lambda: [{"image_id": "a"}, {"image_id": "b"}]
    )
    inputs = [
        {"image_id": "a", "depth": torch.tensor([[1.0]])},
        {"image_id": "b", "depth": torch.tensor([[3.0, 3.0, 90.0]])},
    ]
    outputs = [{"depth": torch.tensor([[2.0]])}, {"depth": torch.tensor([[3.0, 3.0, 40.0]])}]
    results = {}
    for aggregation, cap in (("per_image", "clamp"), ("pooled", "drop")):
        cfg = plugin_cfg(
            "configs/ICMDepth/demo.yaml",
            ["TEST.ICM_DEPTH.AGGREGATION", aggregation, "TEST.ICM_DEPTH.GT_CAP", cap],
        )
        ev = ICMDepthEvaluator(cfg, "icm_depth_eval_two_records", str(tmp_path / aggregation))
        ev.reset()
        ev.process(inputs, outputs)
        results[aggregation] = ev.evaluate()
    per_image, pooled = results["per_image"], results["pooled"]
    # clamp: 90 m -> 80 m is kept (ratio 2); per image: mean(1.0, (0 + 0 + 40 / 80) / 3).
    assert per_image["depth"]["abs_rel"] == pytest.approx((1.0 + 0.5 / 3) / 2)
    # drop: the 90 m pixel is left out; pooled over the three remaining pixels.
    assert pooled["depth"]["abs_rel"] == pytest.approx(1.0 / 3)
    assert dict(per_image["depth_protocol"]) == {
        "per_image": 1.0, "gt_clamp": 1.0, "min_depth": 1e-3, "max_depth": 80.0
    }  # fmt: skip
    assert pooled["depth_protocol"]["per_image"] == 0.0
    assert pooled["depth_protocol"]["gt_clamp"] == 0.0
    written = json.loads((tmp_path / "pooled" / "evaluation_protocol.json").read_text())
    assert (written["aggregation"], written["gt_cap"]) == ("pooled", "drop")
    with pytest.raises(ValueError, match="GT_CAP"):
        ICMDepthEvaluator(
            plugin_cfg("configs/ICMDepth/demo.yaml", ["TEST.ICM_DEPTH.GT_CAP", "keep"]),
            "icm_depth_eval_two_records",
        )
