"""Smoke tests of the demo hooks and the tools (tiny models, a few iterations)."""

import importlib.util
import json

import pytest
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from d2common.testing import repo_root, shared_data
from overhead_fusion import demo


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, repo_root() / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    _tool("visualize_fusion").main(args + tiny_opts)
    assert len(list(out.glob("*.png"))) == 2


def test_evaluate_fusion_tool_repeats(tiny_checkpoint, tiny_opts, tmp_path):
    args = ["--config-file", "configs/OverheadFusion/demo.yaml", "--repeats", "2"]
    args += ["--weights", tiny_checkpoint.MODEL.WEIGHTS, "--json", str(tmp_path / "r.json")]
    args += tiny_opts + ["MODEL.OVERHEAD_FUSION.FUSION", "mean", "OUTPUT_DIR", str(tmp_path)]
    results = _tool("evaluate_fusion").main(args)["fusion"]
    assert results["L1_std"] > 0
    assert json.loads((tmp_path / "r.json").read_text())["fusion"]["L1"] == results["L1"]


def test_benchmark_tool_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    args = ["--device", "cpu", "--image-size", "32", "--views", "3", "--batch", "2"]
    _tool("benchmark_overhead_fusion").main(args + ["--repeats", "1", "--json", str(path)])
    numbers = json.loads(path.read_text())
    assert 0 < numbers["artifact_share_of_step"] < 1 and numbers["train_step_s"] > 0


def test_reproduce_tool_tiny_run(toy_root, tiny_opts, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(toy_root))
    path = tmp_path / "repro.json"
    args = ["--datasets", "toy", "--methods", "quality", "mean", "--iters", "2"]
    args += ["--image-size", "32", "--repeats", "1", "--output-dir", str(tmp_path / "out")]
    _tool("reproduce_fusion").main(args + ["--json", str(path)] + tiny_opts)
    table = capsys.readouterr().out
    assert "Ours (quality)" in table and "L1 baseline / ours" in table
    results = json.loads(path.read_text())["results"]["toy"]
    assert set(results) == {"quality", "mean"} and "L1" in results["mean"]
    assert "L1 RGB sum" in table and "the paper's L1" in table
    assert results["mean"]["L1_rgb_sum"] == pytest.approx(3 * results["mean"]["L1"])


def test_reproduce_tool_cuts_the_real_road_tiles(tmp_path):
    from detectron2.data import DatasetCatalog

    root = shared_data("aerial_roads")
    _tool("reproduce_fusion").prepare_road_tiles(str(root), str(tmp_path / "tiles"), 32, 5)
    train = DatasetCatalog.get("overhead_fusion_aerial_roads_train")
    val = DatasetCatalog.get("overhead_fusion_aerial_roads_val")
    assert len(train) == 6 * 25 and len(val) == 2 * 25


def test_reproduce_tool_leaves_out_road_tiles_without_data(tmp_path):
    from detectron2.data import DatasetCatalog

    root = shared_data("aerial_roads")
    tiles = tmp_path / "tiles"
    counts = _tool("reproduce_fusion").prepare_road_tiles(str(root), str(tiles), 32, 5, 6, 0.01)
    # Most of these images is white outside the photographed area: 15 of 150 and 3 of 50 tiles
    # have at most 1% white pixels.
    assert counts == {"train": 15, "val": 3}
    assert len(list((tiles / "train" / "images").glob("*.png"))) == 15
    assert len(DatasetCatalog.get("overhead_fusion_aerial_roads_val")) == 3
    again = _tool("reproduce_fusion").prepare_road_tiles(str(root), str(tiles), 32, 5, 6, 0.01)
    assert again == counts


def test_artifact_statistics_tool(tmp_path):
    out = tmp_path / "art"
    args = ["--areas", "0.5", "--num", "16", "--size", "32", "--gallery-size", "24"]
    stats = _tool("overhead_fusion_artifacts").main(args + ["--output", str(out)])
    assert [s["mode"] for s in stats] == ["authors", "paper"]
    assert all(1 < s["distinct_occlusion_masks"] <= 16 for s in stats)
    assert stats[1]["occlusion_lost_max"] <= 0.5 + 1e-3
    names = {p.name for p in out.iterdir()}
    assert {"stats.json", "gallery_authors.png", "coverage_paper.png"} <= names
