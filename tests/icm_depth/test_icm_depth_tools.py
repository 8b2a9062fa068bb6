"""ICMDepth tools: the visualisation script, the demo hooks and the benchmark's inputs."""

import importlib.util
import json

import cv2
import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from d2common.testing import load_tool, plugin_cfg, repo_root
from icm_depth import demo, visualization

TINY = [
    "MODEL.ICM_DEPTH.DIM", "16", "MODEL.ICM_DEPTH.NUM_CLUSTERS", "4",
    "MODEL.ICM_DEPTH.NECK_NORM", "",
    "MODEL.ICM_DEPTH.SWIN.EMBED_DIM", "8", "MODEL.ICM_DEPTH.SWIN.DEPTHS", "[1, 1, 1, 1]",
    "MODEL.ICM_DEPTH.SWIN.NUM_HEADS", "[1, 1, 2, 2]", "MODEL.ICM_DEPTH.SWIN.WINDOW_SIZE", "4",
]  # fmt: skip


def test_demo_hooks_name_existing_configs():
    assert demo.DEMO_RUNS[0][1] == "configs/ICMDepth/demo.yaml"
    for _, config, *_ in demo.DEMO_RUNS:
        assert (repo_root() / config).exists()
    assert "depth/delta1_instance" in demo.HEADLINE_METRICS


def test_visualize_depth_tool_with_and_without_icm(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "datasets"))
    cfg = plugin_cfg("configs/ICMDepth/demo.yaml", TINY)
    weights = tmp_path / "w"
    weights.mkdir()
    DetectionCheckpointer(build_model(cfg), save_dir=str(weights)).save("model")
    ckpt = str(weights / "model.pth")
    tool = load_tool("visualize_depth")
    args = ["--config-file", "configs/ICMDepth/demo.yaml", "--weights", ckpt]
    args += ["--compare-config", "configs/ICMDepth/demo_no_icm.yaml", "--compare-weights", ckpt]
    paths = tool.main(args + ["--num", "1", "--matches", "--output", str(tmp_path / "vis")] + TINY)
    assert sorted(p.split("/")[-1] for p in paths) == [
        "icm_depth_00.png", "icm_depth_matches_00_0.png", "icm_depth_matches_00_1.png"
    ]  # fmt: skip
    assert len(list((tmp_path / "vis").glob("*.png"))) == 3

    paths = demo.visualize_demo(
        plugin_cfg("configs/ICMDepth/demo.yaml", TINY + ["MODEL.WEIGHTS", ckpt]),
        str(tmp_path / "demo"),
    )
    assert len(paths) == 3


@pytest.mark.parametrize("weights", ["", "missing/model_final.pth"])
def test_visualize_depth_refuses_a_missing_checkpoint(tmp_path, weights):
    tool = load_tool("visualize_depth")
    args = ["--config-file", "configs/ICMDepth/demo.yaml", "--output", str(tmp_path)]
    with pytest.raises(SystemExit, match="checkpoint"):
        tool.main(args + ["--weights", weights] + TINY)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        visualization.load_model(
            plugin_cfg("configs/ICMDepth/demo.yaml", TINY + ["MODEL.WEIGHTS", ""])
        )
    assert not list(tmp_path.glob("*.png"))


def test_panel_labels_come_from_the_config():
    labels = [
        visualization.model_label(plugin_cfg(f"configs/ICMDepth/{name}.yaml"))
        for name in ("demo", "demo_no_icm", "tableV_I_idisc_like_R50_40k_cityscapes_dvps")
    ]
    assert labels == ["sequential + ICM 0.1", "sequential, no ICM", "independent clusters, no ICM"]


def test_error_map_and_colour_bar():
    gt = np.array([[10.0, 10.0, 0.0]])
    pred = np.array([[10.0, 15.0, 3.0]])  # exact, abs_rel 0.5 (the scale's top), no GT
    rgb = visualization.error_panel(pred, gt)
    assert rgb.shape[1] > 3  # the colour bar is appended to the right
    jet = cv2.applyColorMap(np.array([[0, 255]], np.uint8), cv2.COLORMAP_JET)[0, :, ::-1]
    assert rgb[0, 0].tolist() == jet[0].tolist() and rgb[0, 1].tolist() == jet[1].tolist()
    assert rgb[0, 2].tolist() == [0, 0, 0]


def test_hungarian_match_diagnostic_agrees_with_the_loss():
    torch.manual_seed(0)
    cfg = plugin_cfg("configs/ICMDepth/demo.yaml", TINY + ["MODEL.DEVICE", "cpu"])
    model = build_model(cfg)
    h, w = 48, 80
    depth = torch.rand(h, w) * 20 + 2
    ids = torch.zeros(h, w, dtype=torch.long)
    ids[4:20, 6:30], ids[24:44, 40:76], ids[30:40, 2:20] = 1, 2, 3
    sample = {"image": torch.rand(3, h, w) * 255, "depth": depth, "instance_ids": ids}
    levels = visualization.hungarian_matches(model.eval(), sample)
    with EventStorage(0), torch.no_grad():
        losses = model.train()([sample])
    assert [lv["level"] for lv in levels] == [1, 2, 3]
    for lv in levels:
        assert sorted(inst for _, inst, _ in lv["pairs"]) == [1, 2, 3]
        mean_cost = np.mean([c for _, _, c in lv["pairs"]])
        want = float(losses[f"loss_icm_f{lv['level']}"]) / cfg.MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT
        assert mean_cost == pytest.approx(want, rel=1e-5)
        assert lv["attn"].shape[1:] == lv["memberships"].shape[1:] == lv["size"]
    assert len(visualization.match_panels(levels, max_pairs=2)) == 3 * 2 * 2


def test_benchmark_inputs_have_the_requested_instances():
    bench = load_tool("benchmark_icm")
    attns, depth, ids = bench.make_inputs(5, num_clusters=32)
    assert [tuple(a.shape) for a in attns] == [
        (1, 32, 22 * 76),
        (1, 32, 44 * 152),
        (1, 32, 88 * 304),
    ]
    assert depth.shape == ids.shape == (1, 352, 1216)
    assert 1 <= int(ids.max()) <= 5 and torch.isfinite(depth).all()


def test_pseudo_mask_conversion_keeps_road_obstacles_by_score():
    spec = importlib.util.spec_from_file_location(
        "prep", repo_root() / "datasets" / "prepare_icm_depth_kitti_masks.py"
    )
    prep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prep)
    masks = np.zeros((3, 4, 4), bool)
    masks[0, :2] = True  # car, score 0.6
    masks[1, 1:3] = True  # person, score 0.9: wins the overlap (row 1)
    masks[2] = True  # a dining table: not a road obstacle
    ids = prep.instances_to_id_map(masks, np.array([0.6, 0.9, 0.99]), np.array([2, 0, 60]))
    assert ids.tolist() == [[2] * 4, [1] * 4, [1] * 4, [0] * 4]


def test_loss_balance_tool_terms_match_the_model_losses(tmp_path):
    tool = load_tool("icm_loss_balance")
    out = tmp_path / "balance.json"
    report = tool.main(
        ["--config-file", "configs/ICMDepth/demo.yaml", "--size", "64", "128", "--steps", "0", "1"]
        + ["--json", str(out), "--markdown", str(tmp_path / "balance.md")]
        + ["MODEL.DEVICE", "cpu"]
        + TINY
    )
    assert [p["step"] for p in report["measurements"]] == [0, 1]
    assert json.loads(out.read_text())["size"] == [64, 128]
    assert "| 1 | clusters |" in (tmp_path / "balance.md").read_text()
    # Step 0 against the model's own loss dict on the same batch and weights.
    cfg = plugin_cfg("configs/ICMDepth/demo.yaml", ["MODEL.DEVICE", "cpu"] + TINY)
    torch.manual_seed(cfg.SEED)
    model = build_model(cfg).train()
    batch = tool.render_batch(0, 2, (64, 128), cfg.INPUT.FORMAT)
    with EventStorage(0), torch.no_grad():
        losses = model(batch)
    first = report["measurements"][0]
    w = cfg.MODEL.ICM_DEPTH.LOSS
    assert first["terms"]["silog"]["value"] == pytest.approx(
        float(losses["loss_silog"]) / w.SILOG_WEIGHT, rel=1e-5
    )
    for lvl in (1, 2, 3):
        matched = first["terms"][f"icm_f{lvl}/matched"]["value"]
        assert matched == pytest.approx(float(losses[f"loss_icm_f{lvl}"]) / w.ICM_WEIGHT, rel=1e-5)
        # sum / N <= mean over min(N, M) pairs
        assert first["terms"][f"icm_f{lvl}/clusters"]["value"] <= matched
    for key in ("grad_share/matched", "grad_share/clusters", "value_share/matched"):
        assert sum(first[key].values()) == pytest.approx(1.0)
        assert all(v > 0 for v in first[key].values())
