"""Dataset loaders (COCO-low-light, LIS, COCO folders), the mapper and the enhancers."""

import importlib.util
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from d2common.data.validation import BadSampleError
from d2common.testing import plugin_cfg, shared_data
from lowlight_nl.data.datasets import (
    COCO_LOWLIGHT_SPLITS,
    LIS_SPLITS,
    load_coco_records,
    register_cfg_directories,
)
from lowlight_nl.data.mapper import LowLightDatasetMapper
from lowlight_nl.enhancement import clahe, enhance, gamma_correction

REPO = Path(__file__).resolve().parents[2]


def _prepare_main():
    spec = importlib.util.spec_from_file_location(
        "prepare_coco_lowlight", REPO / "datasets" / "prepare_coco_lowlight.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _coco_subset(tmp_path, n=3):
    """A COCO-layout folder: the first n tiny_coco val images (symlinked) and their annotations."""
    coco = shared_data("tiny_coco")
    with open(coco / "annotations" / "instances_val2017.json") as f:
        data = json.load(f)
    images = sorted(data["images"], key=lambda im: im["file_name"])[:n]
    ids = {im["id"] for im in images}
    data["images"] = images
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    (tmp_path / "annotations").mkdir(parents=True)
    (tmp_path / "val").mkdir()
    for im in images:
        os.symlink(coco / "val2017" / im["file_name"], tmp_path / "val" / im["file_name"])
    with open(tmp_path / "annotations" / "instances_val.json", "w") as f:
        json.dump(data, f)
    return tmp_path, data


def test_coco_folder_from_config_and_missing_images(tmp_path):
    folder, data = _coco_subset(tmp_path / "mine")
    os.remove(folder / "val" / data["images"][0]["file_name"])
    cfg = plugin_cfg(None, ["DATASETS.LOWLIGHT_NL.COCO_DIRS", f"['llt_mine={folder}']"])
    assert register_cfg_directories(cfg) == ["llt_mine_val"]
    from detectron2.data import DatasetCatalog, MetadataCatalog

    records = DatasetCatalog.get("llt_mine_val")
    assert len(records) == 2 and "loaded 2 of 3 records" in records.load_report.summary()
    assert records.load_report.excluded[0][1] == "file not found"
    assert len(MetadataCatalog.get("llt_mine_val").thing_classes) == 80
    bad = plugin_cfg(None, ["DATASETS.LOWLIGHT_NL.COCO_DIRS", "['no_equals_sign']"])
    with pytest.raises(ValueError, match="prefix=/path"):
        register_cfg_directories(bad)


def test_prepared_coco_lowlight_loads_with_original_annotations(tmp_path):
    prepare = _prepare_main()
    coco = shared_data("tiny_coco")
    out = tmp_path / "coco_lowlight"
    crf = str(shared_data("camera_response"))
    args = ["--coco-root", str(coco), "--output", str(out), "--splits", "val2017", "--limit", "2"]
    assert prepare(args + ["--crf", crf, "--workers", "1", "--quiet"]) == 0
    manifest = out / "manifest_val2017.json"
    assert json.loads(manifest.read_text())["written"] == 2
    first = sorted(os.listdir(out / "val2017"))[0]
    before = (out / "val2017" / first).read_bytes()
    os.remove(out / "val2017" / first)
    assert prepare(args + ["--crf", crf, "--workers", "1", "--quiet"]) == 0
    again = json.loads(manifest.read_text())
    assert (again["written"], again["already_there"], again["failed"]) == (1, 1, [])
    assert (out / "val2017" / first).read_bytes() == before  # byte-identical rerun
    image_dir, json_file = COCO_LOWLIGHT_SPLITS["coco_2017_val_lowlight"]
    records = load_coco_records(
        str(tmp_path / json_file), str(tmp_path / image_dir), "coco_2017_val_lowlight"
    )
    assert len(records) == 2 and all(r["annotations"] for r in records)
    normal = cv2.imread(str(coco / "val2017" / first))
    dark = cv2.imread(str(out / "val2017" / first))
    assert dark.shape == normal.shape and dark.mean() < normal.mean()


def test_lis_layout(tmp_path):
    image_dir, json_file = LIS_SPLITS["lis_dark_test"]
    assert image_dir == "LIS/RGB-dark/JPEGImages"
    assert json_file == "LIS/annotations/lis_coco_JPG_test+1.json"
    (tmp_path / image_dir).mkdir(parents=True)
    (tmp_path / "LIS" / "annotations").mkdir()
    cv2.imwrite(str(tmp_path / image_dir / "2.JPG"), np.full((40, 60, 3), 10, np.uint8))
    names = ["bicycle", "car", "motorbike", "bus", "bottle", "chair", "diningtable", "tvmonitor"]
    lis = {
        "images": [{"id": 2, "file_name": "2.JPG", "height": 40, "width": 60}],
        "annotations": [
            {"id": 1, "image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 10], "area": 200,
             "iscrowd": 0, "segmentation": [[5, 5, 25, 5, 25, 15, 5, 15]]}
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)],
    }  # fmt: skip
    (tmp_path / json_file).write_text(json.dumps(lis))
    records = load_coco_records(str(tmp_path / json_file), str(tmp_path / image_dir), "llt_lis")
    assert len(records) == 1 and records[0]["annotations"][0]["category_id"] == 1  # "car"
    with pytest.raises(FileNotFoundError, match="lis_coco_JPG_train"):
        load_coco_records(str(tmp_path / LIS_SPLITS["lis_dark_train"][1]), str(tmp_path), "x")


def _toy_record():
    from detectron2.data import DatasetCatalog

    return DatasetCatalog.get("lowlight_nl_toy_val")[0]


def test_mapper_synthesis_and_enhancer(tmp_path):
    record = _toy_record()
    crf = str(shared_data("camera_response"))
    base = ["INPUT.DATASET_MAPPER", "LowLightDatasetMapper", "INPUT.MIN_SIZE_TRAIN", "(160,)"]
    plain = LowLightDatasetMapper(plugin_cfg("configs/LowLightNL/demo.yaml", base), True)
    synth_cfg = plugin_cfg(
        "configs/LowLightNL/demo.yaml",
        base + ["INPUT.LOWLIGHT_NL.SYNTHESIS.ENABLED", "True",
                "INPUT.LOWLIGHT_NL.SYNTHESIS.CRF_PATH", crf,
                "INPUT.RANDOM_FLIP", "none"],
    )  # fmt: skip
    synth = LowLightDatasetMapper(synth_cfg, True)
    np.random.seed(0)
    a = plain(dict(record))
    out1, out2 = synth(dict(record)), synth(dict(record))
    assert out1["image"].shape == a["image"].shape
    assert len(out1["instances"]) == len(record["annotations"])
    assert not np.array_equal(out1["image"].numpy(), out2["image"].numpy())  # fresh noise
    assert out1["image"].float().mean() < a["image"].float().mean()
    test_cfg = plugin_cfg("configs/LowLightNL/demo.yaml", ["INPUT.LOWLIGHT_NL.ENHANCER", "gamma"])
    enhanced = LowLightDatasetMapper(test_cfg, False)(dict(record))
    stock = LowLightDatasetMapper(plugin_cfg("configs/LowLightNL/demo.yaml"), False)(dict(record))
    assert enhanced["image"].float().mean() > stock["image"].float().mean()


def test_mapper_skips_unreadable_training_images(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    record = dict(_toy_record(), file_name=str(broken))
    cfg = plugin_cfg("configs/LowLightNL/demo.yaml")
    train_mapper = LowLightDatasetMapper(cfg, True)
    assert train_mapper(dict(record)) is None
    assert train_mapper.num_skipped == 1
    assert train_mapper.skipper.reasons["not a readable image"] == 1
    with pytest.raises(BadSampleError, match="broken.jpg"):
        LowLightDatasetMapper(cfg, False)(dict(record))


def test_gamma_correction_matches_formula_and_clahe_raises_contrast():
    image = np.random.default_rng(0).integers(0, 60, (48, 64, 3), dtype=np.uint8)
    expected = np.rint(255 * (image / 255.0) ** (1 / 2.2)).astype(np.uint8)
    np.testing.assert_array_equal(gamma_correction(image, 2.2), expected)
    out = clahe(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out.astype(float).std() > image.astype(float).std()
    grey = np.repeat(image[:, :, :1], 3, axis=2)
    out_grey = clahe(grey).astype(int)
    assert np.abs(out_grey - out_grey[:, :, :1]).max() <= 2  # lightness only: no hue shift
    assert enhance(image, "none") is image
    with pytest.raises(ValueError, match="unknown enhancer"):
        enhance(image, "retinex")
    with pytest.raises(TypeError, match="uint8"):
        gamma_correction(image.astype(np.float32))


def test_visualize_tool_writes_panels(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "visualize_lowlight", REPO / "tools" / "visualize_lowlight.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    argv = [
        "visualize_lowlight.py", "--dataset", "lowlight_nl_toy_val", "--num", "1",
        "--synthesize", "--output", str(tmp_path),
        "--model", f"untrained={REPO / 'configs/LowLightNL/demo.yaml'}",
        "MODEL.WEIGHTS", "",
    ]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    tool.main()
    (panel,) = list(tmp_path.glob("*.png"))
    image = cv2.imread(str(panel))
    assert image.shape[1] > 4 * image.shape[0]  # normal, low light, prediction, ground truth


def test_paper_noise_toy_variant_has_the_same_scenes_and_annotations():
    from detectron2.data import DatasetCatalog

    toy = DatasetCatalog.get("lowlight_nl_toy_val")
    paper = DatasetCatalog.get("lowlight_nl_toy_paper_noise_val")
    assert len(toy) == len(paper) == 16
    for a, b in zip(toy, paper):
        assert a["file_name"] != b["file_name"]
        assert [x["bbox"] for x in a["annotations"]] == [x["bbox"] for x in b["annotations"]]
    # darker on average: gamma up to 5 instead of 2.5
    mean = lambda records: np.mean([cv2.imread(r["file_name"]).mean() for r in records])  # noqa
    assert mean(paper) < mean(toy)
