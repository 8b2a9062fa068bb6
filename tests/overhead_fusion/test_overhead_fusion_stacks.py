"""Real image stacks: loading, the mapper without synthesis, a training step, and the inference
tool (whole image and by windows; GeoTIFF with rasterio where installed)."""

import cv2
import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from d2common.testing import load_tool, run_train_steps
from overhead_fusion.data import (
    LABEL_FORMATS,
    OverheadFusionDatasetMapper,
    decode_color_label,
    encode_color_label,
    load_image_stacks,
)


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


@pytest.fixture
def stacks(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "stacks"
    for k in range(3):
        _write(root / "a" / f"view_{k}.png", rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
    ids = rng.integers(0, 3, (40, 56)).astype(np.uint8)
    _write(root / "a" / "label.png", encode_color_label(ids, LABEL_FORMATS["city_osm"]))
    _write(root / "a" / "clean.png", rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
    for k in range(2):
        _write(root / "b" / f"view_{k}.png", rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
    _write(root / "c" / "view_0.png", np.zeros((40, 56, 3), np.uint8))
    _write(root / "c" / "view_1.png", np.zeros((30, 56, 3), np.uint8))
    return root


def test_load_image_stacks(stacks):
    records = load_image_stacks(str(stacks))  # unlabelled
    assert [r["image_id"] for r in records] == ["a", "b"]
    names = [p.rsplit("/", 1)[1] for p in records[0]["view_files"]]
    assert (
        names == ["view_0.png", "view_1.png", "view_2.png"] and len(records[1]["view_files"]) == 2
    )
    assert "sem_seg_file_name" not in records[0] and "clean_file_name" in records[0]
    ((path, reason),) = records.load_report.excluded
    assert path.endswith("c/view_1.png") and "size" in reason
    labelled = load_image_stacks(str(stacks), "city_osm")
    assert [r["image_id"] for r in labelled] == ["a"] and "sem_seg_file_name" in labelled[0]
    reasons = sorted(r for _, r in labelled.load_report.excluded)
    assert len(reasons) == 2 and reasons[1].startswith("no label image")


def test_mapper_reads_the_views_as_they_are(stacks, tiny_cfg):
    record = load_image_stacks(str(stacks), "city_osm")[0]
    out = OverheadFusionDatasetMapper(tiny_cfg(), is_train=False)(record)
    for k, path in enumerate(record["view_files"]):
        ref = cv2.resize(cv2.imread(path)[:, :, ::-1], (32, 32), interpolation=cv2.INTER_AREA)
        expected = torch.from_numpy(np.ascontiguousarray(ref)).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(out["views"][k], expected)
    labels = decode_color_label(cv2.imread(str(stacks / "a" / "label.png"))[:, :, ::-1].copy(),
                                LABEL_FORMATS["city_osm"])  # fmt: skip
    ref = cv2.resize(labels, (32, 32), interpolation=cv2.INTER_NEAREST)
    assert (out["sem_seg"].numpy() == ref).all()
    assert out["image"].shape == (3, 32, 32) and (out["artifact_kinds"] == -1).all()


def test_training_step_on_a_stack_dataset(stacks, tiny_cfg):
    opts = ["INPUT.OVERHEAD_FUSION.STACK_DATASETS", f"['of_test_stacks_train:{stacks}:city_osm']"]
    opts += ["DATASETS.TRAIN", "('of_test_stacks_train',)"]
    _, storage = run_train_steps(tiny_cfg(opts=opts), 1)
    assert np.isfinite(storage.latest()["total_loss"][0])


@pytest.fixture
def checkpoint(tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    model = build_model(cfg)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("tiny")
    (tmp_path / "config.yaml").write_text(cfg.dump())
    return str(tmp_path / "config.yaml"), str(tmp_path / "tiny.pth"), model.eval()


def test_fuse_stack_tool(stacks, checkpoint, tmp_path):
    config, weights, model = checkpoint
    tool = load_tool("fuse_stack")
    base = ["--config-file", config, "--weights", weights, "--stack", str(stacks / "a")]
    whole = tool.main(base + ["--output", str(tmp_path / "whole"), "--window", "64"])
    assert sorted(p.rsplit("/", 1)[1] for p in whole) == [
        "fused.png", "quality_0.png", "quality_1.png", "quality_2.png", "segmentation.png"
    ]  # fmt: skip
    views = np.stack(
        [cv2.imread(str(stacks / "a" / f"view_{k}.png"))[:, :, ::-1] for k in range(3)]
    )
    with torch.no_grad():
        x = torch.from_numpy(views.copy()).permute(0, 3, 1, 2).float() / 255
        fused, _ = model.fuse(x, torch.tensor([3]))
    written = cv2.imread(str(tmp_path / "whole" / "fused.png"))[:, :, ::-1].astype(np.float32)
    expected = fused[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(written - expected).max() <= 0.51
    # by windows of 16 px with 8 px of context: same size, quality maps summing to one
    tool.main(base + ["--output", str(tmp_path / "win"), "--window", "16", "--margin", "8"])
    q = sum(cv2.imread(str(tmp_path / "win" / f"quality_{k}.png"), 0).astype(int) for k in range(3))
    assert q.shape == (40, 56) and np.abs(q - 255).max() <= 2


def test_fuse_stack_geotiff_keeps_the_georeference(stacks, checkpoint, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    config, weights, _ = checkpoint
    folder = tmp_path / "geo"
    folder.mkdir()
    transform = from_origin(500000.0, 4200000.0, 0.5, 0.5)
    for k in range(2):
        data = cv2.imread(str(stacks / "a" / f"view_{k}.png"))[:, :, ::-1]
        profile = dict(driver="GTiff", height=40, width=56, count=3, dtype="uint8")
        with rasterio.open(folder / f"view_{k}.tif", "w", crs="EPSG:32633", transform=transform,
                           **profile) as dst:  # fmt: skip
            dst.write(np.moveaxis(data, -1, 0))
    args = ["--config-file", config, "--weights", weights, "--stack", str(folder)]
    load_tool("fuse_stack").main(args + ["--output", str(tmp_path / "out"), "--window", "16"])
    with rasterio.open(tmp_path / "out" / "fused.tif") as src:
        assert src.transform == transform and src.crs.to_epsg() == 32633 and src.count == 3
