"""Smoke tests of the demo hooks and the tools (tiny models, a few iterations)."""

import json

import numpy as np
import pytest
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from d2common.testing import load_tool, repo_root, shared_data
from overhead_fusion import demo


@pytest.fixture
def tiny_checkpoint(tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("tiny")
    cfg.MODEL.WEIGHTS = str(tmp_path / "tiny.pth")
    return cfg


def test_demo_declares_runs_and_draws(tiny_checkpoint, tmp_path):
    assert demo.DEMO_RUNS[0][1] == "configs/OverheadFusion/demo.yaml"
    assert all((repo_root() / run[1]).exists() for run in demo.DEMO_RUNS)
    assert "fusion/L1" in demo.HEADLINE_METRICS and "fusion/mIoU" in demo.HEADLINE_METRICS
    paths = demo.visualize_demo(tiny_checkpoint, str(tmp_path / "vis"), num_samples=2)
    assert len(paths) == 2


def test_visualize_fusion_tool(tiny_checkpoint, tiny_opts, tmp_path):
    out = tmp_path / "figs"
    args = ["--config-file", "configs/OverheadFusion/demo.yaml"]
    args += ["--weights", tiny_checkpoint.MODEL.WEIGHTS, "--output", str(out), "--num", "2"]
    load_tool("visualize_fusion").main(args + tiny_opts)
    assert len(list(out.glob("*.png"))) == 2


def test_evaluate_fusion_tool_repeats(tiny_checkpoint, tiny_opts, tmp_path):
    args = ["--config-file", "configs/OverheadFusion/demo.yaml", "--repeats", "2"]
    args += ["--weights", tiny_checkpoint.MODEL.WEIGHTS, "--json", str(tmp_path / "r.json")]
    args += tiny_opts + ["MODEL.OVERHEAD_FUSION.FUSION", "mean", "OUTPUT_DIR", str(tmp_path)]
    results = load_tool("evaluate_fusion").main(args)["fusion"]
    assert results["L1_std"] > 0
    assert json.loads((tmp_path / "r.json").read_text())["fusion"]["L1"] == results["L1"]


def test_benchmark_tool_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    args = ["--device", "cpu", "--image-size", "32", "--views", "3", "--batch", "2"]
    load_tool("benchmark_overhead_fusion").main(args + ["--repeats", "1", "--json", str(path)])
    numbers = json.loads(path.read_text())
    assert 0 < numbers["artifact_share_of_step"] < 1 and numbers["train_step_s"] > 0


def test_reproduce_tool_tiny_run_resumes_and_labels_the_rows(
    toy_root, tiny_opts, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(toy_root))
    path = tmp_path / "repro.json"
    args = ["--datasets", "toy", "--methods", "quality", "mean", "--iters", "2"]
    args += ["--seeds", "0", "1"]
    args += ["--image-size", "32", "--repeats", "1", "--output-dir", str(tmp_path / "out")]
    tool = load_tool("reproduce_fusion")
    tool.main(args + ["--json", str(path)] + tiny_opts)
    table = capsys.readouterr().out
    assert "Ours (quality) (n=2)" in table and "L1 baseline / ours" in table
    assert "L1 RGB sum" in table and "the paper's L1" in table
    assert "All background" in table and "Majority (background)" in table
    results = json.loads(path.read_text())["results"]["toy"]["overhead_fusion_toy_val"]
    methods = results["methods"]
    assert set(methods) == {"quality", "mean"} and len(methods["mean"]["L1_runs"]) == 2
    assert methods["mean"]["L1_rgb_sum"] == pytest.approx(3 * methods["mean"]["L1"])
    run_dir = tmp_path / "out" / "toy" / "quality" / "seed_1"
    assert {"config.yaml", "results.json", "model_final.pth"} <= {p.name for p in run_dir.iterdir()}
    # Finished runs are read back, not trained again.
    from overhead_fusion import engine

    monkeypatch.setattr(engine, "OverheadFusionTrainer", None)
    again = tool.main(args + tiny_opts)["toy"]["overhead_fusion_toy_val"]["methods"]
    assert again["mean"]["L1_runs"] == methods["mean"]["L1_runs"]


def test_reference_rows_are_constant_predictors(toy_root, tiny_cfg, monkeypatch):
    import numpy as np
    import torch
    from detectron2.data import DatasetCatalog

    from overhead_fusion.data import read_tile

    cfg = tiny_cfg()
    rows = load_tool("reproduce_fusion").reference_rows(
        cfg, "overhead_fusion_toy_train", "overhead_fusion_toy_val"
    )
    labels = torch.cat(
        [
            torch.from_numpy(read_tile(r, 32, nodata_color=(255, 255, 255))[1]).flatten()
            for r in DatasetCatalog.get("overhead_fusion_toy_val")
        ]
    ).long()
    labels = labels[labels < 3]
    background = float((labels == 0).float().mean())
    # predicting background everywhere: accuracy = its share; IoU = its share for background,
    # 0 for the other classes present; fwIoU = share^2
    assert rows["All background"]["pACC"] == pytest.approx(100 * background)
    assert rows["All background"]["mIoU"] == pytest.approx(100 * background / 3)
    assert rows["All background"]["fwIoU"] == pytest.approx(100 * background**2)
    assert np.isfinite(rows["Majority (background)"]["mIoU"])


def _white_fraction_per_tile(image_path, grid):
    import cv2

    white = (cv2.imread(str(image_path)) == 255).all(axis=2)
    step = min(white.shape) // grid
    return [
        white[r * step : (r + 1) * step, c * step : (c + 1) * step].mean()
        for r in range(grid)
        for c in range(grid)
    ]


def test_reproduce_tool_cuts_image_level_folds(tmp_path):
    from detectron2.data import DatasetCatalog

    root = shared_data("aerial_roads")
    tool = load_tool("reproduce_fusion")
    tiles = tmp_path / "tiles"
    counts = tool.prepare_road_tiles(str(root), str(tiles), 32, 5, None, 0.01)
    images = sorted((root / "images").glob("*.png"))
    for split, indices in tool.DEFAULT_FOLDS.items():
        fractions = [f for i in indices for f in _white_fraction_per_tile(images[i], 5)]
        expected = sum(f <= 0.01 for f in fractions)
        assert counts[split] == expected
        assert len(DatasetCatalog.get(f"overhead_fusion_road_folds_{split}")) == expected
        # no image in two folds
        names = {p.name.rsplit("_", 2)[0] for p in (tiles / split / "images").glob("*.png")}
        assert names and names <= {images[i].stem for i in indices}
    again = tool.prepare_road_tiles(str(root), str(tiles), 32, 5, None, 0.01)
    assert again == counts
    with pytest.raises(ValueError, match="disjoint"):
        tool.prepare_road_tiles(str(root), str(tiles), 32, 5, {"train": [0], "test": [0]})


def test_road_run_config_opens_in_the_other_tools(tiny_opts, tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    root = shared_data("aerial_roads")
    out = tmp_path / "out"
    args = ["--datasets", "roads", "--methods", "mean", "--road-iters", "2", "--road-grid", "5"]
    args += ["--road-max-nodata", "1", "--image-size", "32", "--repeats", "1"]
    args += ["--roads-dir", str(root), "--output-dir", str(out)]
    opts = tiny_opts + ["MODEL.OVERHEAD_FUSION.QUALITY_BASE_WIDTH", "4"]
    results = load_tool("reproduce_fusion").main(args + opts)["roads"]
    assert set(results) == {"overhead_fusion_road_folds_test"}
    run_dir = out / "roads" / "mean" / "seed_0"
    # A fresh process knows nothing of the folds: the config.yaml registers them.
    for split in ("train", "tune", "test"):
        DatasetCatalog.remove(f"overhead_fusion_road_folds_{split}")
        MetadataCatalog.remove(f"overhead_fusion_road_folds_{split}")
    args = ["--config-file", str(run_dir / "config.yaml"), "--weights"]
    args += [str(run_dir / "model_final.pth"), "--repeats", "1", "OUTPUT_DIR", str(tmp_path / "ev")]
    evaluated = load_tool("evaluate_fusion").main(args)
    assert evaluated["records"]["evaluated"] == 50
    assert evaluated["fusion"]["L1"] == pytest.approx(
        results["overhead_fusion_road_folds_test"]["methods"]["mean"]["L1"]
    )
    figures = tmp_path / "figs"
    vis = ["--config-file", str(run_dir / "config.yaml"), "--weights"]
    vis += [str(run_dir / "model_final.pth"), "--output", str(figures), "--num", "2"]
    load_tool("visualize_fusion").main(vis)
    assert len(list(figures.glob("*.png"))) == 2


def test_artifact_statistics_tool(tmp_path):
    out = tmp_path / "art"
    args = ["--areas", "0.5", "--num", "16", "--size", "32", "--gallery-size", "24"]
    stats = load_tool("overhead_fusion_artifacts").main(args + ["--output", str(out)])
    assert [s["mode"] for s in stats] == ["authors", "paper"]
    assert all(1 < s["distinct_occlusion_masks"] <= 16 for s in stats)
    assert stats[1]["occlusion_lost_max"] <= 0.5 + 1e-3
    names = {p.name for p in out.iterdir()}
    assert {"stats.json", "gallery_authors.png", "coverage_paper.png"} <= names


def test_sweep_tool_runs_every_point_and_draws_bands(toy_root, tiny_opts, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(toy_root))
    tool = load_tool("sweep_fusion")
    args = ["--sweep", "area", "--values", "0.2", "0.5", "--methods", "mean"]
    args += ["--seeds", "0", "1", "--output-dir", str(tmp_path)]
    opts = tiny_opts + ["SOLVER.MAX_ITER", "1", "TEST.OVERHEAD_FUSION.REPEATS", "1"]
    summary = tool.main(args + opts)
    points = summary["mean"]
    assert set(points) == {"0.2", "0.5"} and len(points["0.5"]["L1"]["runs"]) == 2
    # the mean fusion's L1 grows with the artifact area
    assert points["0.5"]["L1"]["mean"] > points["0.2"]["L1"]["mean"]
    runs = np.array(points["0.5"]["mIoU"]["runs"])
    half = 12.706204736 * runs.std(ddof=1) / np.sqrt(2)  # t(0.975, 1 dof)
    assert points["0.5"]["mIoU"]["high"] == pytest.approx(runs.mean() + half)
    cfg = (tmp_path / "area" / "mean" / "0.2" / "seed_1" / "config.yaml").read_text()
    assert "AREA_FRACTION: 0.2" in cfg and "SEED: 1" in cfg
    assert {"sweep.json", "sweep.md", "sweep_mIoU.png", "sweep_L1.png"} <= {
        p.name for p in (tmp_path / "area").iterdir()
    }
