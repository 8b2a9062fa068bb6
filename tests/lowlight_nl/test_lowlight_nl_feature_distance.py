"""Feature distance between low-light and normal-light renderings of the same toy scenes."""

import numpy as np
import torch
import torch.nn.functional as F

from d2common.testing import load_tool, plugin_cfg
from lowlight_nl.feature_distance import relative_distances
from lowlight_nl.modeling import nonlocal_blocks_disabled


def _model(*opts):
    from detectron2.modeling import build_model

    torch.manual_seed(0)
    cfg = plugin_cfg("configs/LowLightNL/demo.yaml", ["MODEL.DEVICE", "cpu"] + list(opts))
    model = build_model(cfg).eval()
    for block in getattr(model.backbone.bottom_up, "nonlocal_blocks", {}).values():
        block.blend_weight.data.fill_(0.5)  # a block that changes its input
    return model, cfg


def _manual_res4(model, cfg, image_rgb):
    """res4 of the ResNet, preprocessing written out: BGR, (x - mean) / std, pad to 32."""
    bgr = torch.as_tensor(image_rgb[:, :, ::-1].copy()).permute(2, 0, 1).float()
    mean = torch.tensor(cfg.MODEL.PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(cfg.MODEL.PIXEL_STD).view(3, 1, 1)
    x = (bgr - mean) / std
    h, w = x.shape[1:]
    x = F.pad(x, (0, -w % 32, 0, -h % 32))
    with torch.no_grad():
        return model.backbone.bottom_up(x[None])["res4"]


def test_distances_match_a_hand_computation_and_vanish_for_identical_images():
    model, cfg = _model()
    pairs = list(load_tool("lowlight_feature_distance").toy_pairs(2))
    low, normal = pairs[0]
    assert low.shape == normal.shape == (160, 192, 3) and low.mean() < normal.mean()
    table = relative_distances(model, pairs[:1])
    assert {"res2", "res3", "res4", "res5", "p2", "p6"} <= set(table)
    a, b = _manual_res4(model, cfg, low), _manual_res4(model, cfg, normal)
    assert abs(table["res4"] - float((a - b).norm() / b.norm())) < 1e-5
    assert all(v == 0 for v in relative_distances(model, [(normal, normal)]).values())
    two = relative_distances(model, pairs)
    one_b = relative_distances(model, pairs[1:])
    assert abs(two["p3"] - (table["p3"] + one_b["p3"]) / 2) < 1e-6


def test_blocks_off_row_for_models_with_blocks():
    model, _ = _model()
    plain, _ = _model("MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone")
    table = load_tool("lowlight_feature_distance").distance_table(
        [("wNL", model), ("plain", plain)], num=1
    )
    assert set(table) == {"wNL", "wNL (blocks off)", "plain"}
    assert table["wNL"]["res2"] != table["wNL (blocks off)"]["res2"]
    with nonlocal_blocks_disabled(model):
        off = relative_distances(model, list(load_tool("lowlight_feature_distance").toy_pairs(1)))
    assert off == table["wNL (blocks off)"]
    assert np.isfinite(list(table["plain"].values())).all()


def test_paper_noise_pairs_share_the_scene_and_are_noisier():
    tool = load_tool("lowlight_feature_distance")
    toy = list(tool.toy_pairs(3, noise="toy"))
    paper = list(tool.toy_pairs(3, noise="paper"))
    for (low_toy, clean_toy), (low_paper, clean_paper) in zip(toy, paper):
        np.testing.assert_array_equal(clean_toy, clean_paper)  # same scene, other degradation
        assert not np.array_equal(low_toy, low_paper)

    def noise(img):  # mean absolute difference of horizontal neighbours: high for pixel noise
        return np.abs(np.diff(img.astype(float), axis=1)).mean()

    assert np.mean([noise(p[0]) for p in paper]) > 1.5 * np.mean([noise(t[0]) for t in toy])


def test_seed_summary_gives_mean_and_sample_std():
    tables = [{"a": {"res2": v}} for v in (1.0, 2.0, 6.0)]
    summary = load_tool("lowlight_feature_distance").seed_summary(tables)
    mean, std = summary["a"]["res2"]
    assert (
        mean == 3.0 and abs(std - np.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2)) < 1e-12
    )
    assert load_tool("lowlight_feature_distance").seed_summary(tables[:1])["a"]["res2"] == (
        1.0,
        0.0,
    )
