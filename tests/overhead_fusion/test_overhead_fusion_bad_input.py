"""The bad-input matrix of the tiled loader and the mapper, in training and in test mode.

Training mode is a training split as registered: headers read at load, the training mapper
decodes, skips, warns and counts. Test mode is an evaluation split: both files of every pair
decoded at load, and the test mapper raises instead of skipping. Each pair is cut into 2 x 2
tiles, so one bad pair is 4 records.
"""

import json
import logging
import os

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, build_detection_test_loader
from detectron2.modeling import build_model

from d2common.checks import ConfigDataMismatch, run_dataset_checks
from d2common.data.validation import BadSampleError
from overhead_fusion.data import (
    IGNORE_LABEL,
    LABEL_FORMATS,
    OverheadFusionDatasetMapper,
    encode_color_label,
    load_tiled_dataset,
)
from overhead_fusion.data.builtin import register_tiled_dataset
from overhead_fusion.engine import OverheadFusionTrainer
from overhead_fusion.evaluation import OverheadFusionEvaluator

CITY = LABEL_FORMATS["city_osm"]
SIDE, GRID = 64, 2
GOOD = ("a", "b")


def _write(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def _pair(root, key, side=SIDE, label_side=None, seed=0, unknown=0.0):
    rng = np.random.default_rng(seed)
    _write(root / "images" / f"{key}.png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    ls = label_side or side
    label = encode_color_label(rng.integers(0, 3, (ls, ls)).astype(np.uint8), CITY)
    label[rng.random((ls, ls)) < unknown] = (12, 200, 3)  # a colour of no City-OSM class
    _write(root / "labels" / f"{key}.png", label)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# Each fault writes one bad pair "c" next to the good ones and returns the file at fault.
def _missing(root):
    return root / "images" / "c"  # listed in the split, no file on disk


def _truncated(root):
    _pair(root, "c")
    _truncate(root / "images" / "c.png")
    return root / "images" / "c.png"


def _corrupt(root):
    _pair(root, "c")
    (root / "labels" / "c.png").write_bytes(b"this is no image " * 20)
    return root / "labels" / "c.png"


def _unpaired(root):
    _pair(root, "c")
    os.remove(root / "labels" / "c.png")
    return root / "images" / "c.png"


def _duplicate(root):
    _pair(root, "c")
    image = cv2.imread(str(root / "images" / "c.png"))
    assert cv2.imwrite(str(root / "images" / "c.tif"), image)
    return root / "images" / "c.tif"


def _size_mismatch(root):
    _pair(root, "c", label_side=int(SIDE * 0.9))  # a 0.9x label: misaligned tiles
    return root / "labels" / "c.png"


def _unknown_some(root):
    _pair(root, "c", unknown=0.25)
    return root / "labels" / "c.png"


def _unknown_most(root):
    _pair(root, "c", unknown=0.75)  # a label of another colour table
    return root / "labels" / "c.png"


def _empty_annotation(root):
    _pair(root, "c")
    (root / "labels" / "c.png").write_bytes(b"")
    return root / "labels" / "c.png"


def _tiny(root):
    _pair(root, "c", side=20)  # 2 x 2 tiles of 10 px
    return root / "images" / "c.png"


_TABLE = "outside the label table"
# fault -> (writer, train behaviour, test behaviour or None when the same): ("excluded", reason)
# at load, ("skipped", reason) by the training mapper, ("ignored", fraction) mapped to the ignore
# label with a warning, ("load error", message) for the whole dataset.
FAULTS = {
    "missing file": (_missing, ("excluded", "listed in the split but not found"), None),
    "truncated file": (_truncated, ("skipped", "truncated"), ("excluded", "truncated")),
    "corrupt file": (_corrupt, ("excluded", "not a readable image"), None),
    "unpaired file": (_unpaired, ("excluded", "unpaired: no label image"), None),
    "duplicate name": (_duplicate, ("load error", "duplicate image"), None),
    "size mismatch": (_size_mismatch, ("excluded", "does not match its image"), None),
    "unknown label value (some pixels)": (_unknown_some, ("ignored", 0.25), None),
    "unknown label value (most pixels)": (_unknown_most, ("skipped", _TABLE), ("excluded", _TABLE)),
    "empty annotation": (_empty_annotation, ("excluded", "empty file"), None),
    "tiny image": (_tiny, ("excluded", "20x20 is too small for 2x2 tiles"), None),
}


def _dataset(tmp_path, fault):
    for i, key in enumerate(GOOD):
        _pair(tmp_path, key, seed=i + 1)
    return FAULTS[fault][0](tmp_path)


def _load(root, full_decode):
    return load_tiled_dataset(
        str(root / "images"),
        str(root / "labels"),
        "city_osm",
        grid=GRID,
        keys=list(GOOD) + ["c"],
        full_decode=full_decode,
    )


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_bad_input_matrix(tmp_path, tiny_cfg, caplog, fault, mode):
    culprit = _dataset(tmp_path, fault)
    _, train_expect, test_expect = FAULTS[fault]
    kind, expected = train_expect if mode == "train" or test_expect is None else test_expect
    if kind == "load error":
        with pytest.raises(ValueError, match=expected) as info:
            _load(tmp_path, mode == "test")
        assert str(culprit) in str(info.value)
        assert str(tmp_path / "images" / "c.png") in str(info.value)
        return
    with caplog.at_level(logging.WARNING):
        records = _load(tmp_path, mode == "test")
    report = records.load_report
    mapper = OverheadFusionDatasetMapper(tiny_cfg(), is_train=mode == "train")
    good_ids = [f"{k}_{r}_{c}" for k in GOOD for r in range(GRID) for c in range(GRID)]
    if kind == "excluded":
        assert [r["image_id"] for r in records] == good_ids
        assert report.num_candidates == 12 and len(report.excluded) == 4
        assert {p for p, _ in report.excluded} == {str(culprit)}
        assert all(expected in why for _, why in report.excluded)
        assert "loaded 8 of 12 records; 4 excluded" in caplog.text
        assert all(mapper(r) is not None for r in records)
        return
    # The fault passes the load: the pair's 4 tiles are records.
    assert [r["image_id"] for r in records][:8] == good_ids and len(records) == 12
    assert report.excluded == []
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        outputs = [mapper(r) for r in records]
    if kind == "skipped":
        assert [o is None for o in outputs] == [False] * 8 + [True] * 4
        assert mapper.num_skipped == 4
        assert str(culprit) in caplog.text and expected in caplog.text
        return
    # Unknown colours in some pixels: kept, those pixels ignored (never background), warned once.
    assert kind == "ignored" and all(o is not None for o in outputs)
    bad = torch.stack([o["sem_seg"] for o in outputs[8:]])
    assert (bad == IGNORE_LABEL).float().mean() == pytest.approx(expected, abs=0.03)
    assert not (torch.stack([o["sem_seg"] for o in outputs[:8]]) == IGNORE_LABEL).any()
    warnings = [m for m in caplog.messages if _TABLE in m]
    assert len(warnings) == 1 and str(culprit) in warnings[0] and "% of the pixels" in warnings[0]


@pytest.mark.parametrize("mode", ["train", "test"])
def test_file_lost_after_loading(tmp_path, tiny_cfg, caplog, mode):
    """A file that breaks between loading and reading: training skips and counts, an evaluation
    stops naming the file (it never scores another tile in its place)."""
    _dataset(tmp_path, "missing file")
    records = _load(tmp_path, mode == "test")
    _truncate(tmp_path / "labels" / "b.png")
    mapper = OverheadFusionDatasetMapper(tiny_cfg(), is_train=mode == "train")
    assert mapper(records[0]) is not None
    if mode == "train":
        with caplog.at_level(logging.WARNING):
            assert mapper(records[4]) is None
        assert mapper.num_skipped == 1 and "b.png" in caplog.text
    else:
        with pytest.raises(BadSampleError, match="b.png: truncated or corrupt"):
            mapper(records[4])


def test_mapper_rejects_a_label_of_another_size(tmp_path, tiny_cfg):
    """A label changed after loading (or a record written by hand) is caught at read time too."""
    _pair(tmp_path, "a")
    _pair(tmp_path / "other", "a", label_side=int(SIDE * 0.9))
    record = _load(tmp_path, True)[0]
    record["sem_seg_file_name"] = str(tmp_path / "other" / "labels" / "a.png")
    mapper = OverheadFusionDatasetMapper(tiny_cfg(), is_train=False)
    with pytest.raises(BadSampleError, match="label of size 57x57 does not match its image") as e:
        mapper(record)
    assert str(tmp_path / "images" / "a.png") in str(e.value)
    assert str(tmp_path / "other" / "labels" / "a.png") in str(e.value)


def test_corrupt_tile_is_excluded_from_the_evaluation_not_replaced(tmp_path, tiny_cfg):
    """Three tiles, one truncated: the evaluation scores the 2 readable tiles once each and says
    so (detectron2's loader used to serve a substitute: the confusion matrix counted 3 tiles)."""
    for i, key in enumerate(("t1", "t2", "t3")):
        _pair(tmp_path, key, seed=i)
    _truncate(tmp_path / "images" / "t2.png")
    name = "overhead_fusion_test_three_tiles_val"
    register_tiled_dataset(
        name, str(tmp_path / "images"), str(tmp_path / "labels"), "city_osm", "", "", 0, 1
    )
    cfg = tiny_cfg()
    loader = build_detection_test_loader(
        DatasetCatalog.get(name), mapper=OverheadFusionDatasetMapper(cfg, False), num_workers=0
    )
    evaluator = OverheadFusionEvaluator(cfg, name, str(tmp_path / "inference"))
    evaluator.reset()
    for batch in loader:
        outputs = [
            {"sem_seg": torch.nn.functional.one_hot(b["sem_seg"], 3).permute(2, 0, 1).float()}
            for b in batch
        ]
        evaluator.process(batch, outputs)
    results = evaluator.evaluate()
    assert dict(results["records"]) == {"evaluated": 2.0, "candidates": 3.0, "excluded": 1.0}
    with open(tmp_path / "inference" / "confusion_matrix.json") as f:
        assert np.sum(json.load(f)["matrix"]) == 2 * 32 * 32
    with open(tmp_path / "inference" / "evaluation_records.json") as f:
        records = json.load(f)
    assert "evaluated 2 of 3 records; 1 excluded: truncated or corrupt image" in records["summary"]
    assert records["excluded_files"][0]["file"] == str(tmp_path / "images" / "t2.png")
    assert results["fusion"]["pACC"] == pytest.approx(100.0)


def test_evaluator_refuses_a_tile_scored_twice(tmp_path, tiny_cfg):
    cfg = tiny_cfg()
    records = DatasetCatalog.get("overhead_fusion_toy_val")
    evaluator = OverheadFusionEvaluator(cfg, "overhead_fusion_toy_val")
    evaluator.reset()
    seg = torch.zeros(3, 2, 2)
    for record in list(records) + [records[0]]:
        evaluator.process([{"image_id": record["image_id"]}], [{"sem_seg": seg}])
    with pytest.raises(Exception, match="scored more than once"):
        evaluator.evaluate()


def test_start_up_checks(tiny_cfg):
    names = ["overhead_fusion_toy_train", "overhead_fusion_toy_val"]
    for name in names:
        DatasetCatalog.get(name)  # loaded, as the trainer does before checking
    run_dataset_checks(tiny_cfg(), names)
    wrong = tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.NUM_CLASSES", "2"])
    with pytest.raises(ConfigDataMismatch, match="set MODEL.OVERHEAD_FUSION.NUM_CLASSES 3") as e:
        OverheadFusionTrainer.build_train_loader(wrong)
    assert "CLASS_WEIGHTS" in str(e.value)
    with pytest.raises(ConfigDataMismatch, match="NUM_CLASSES 3"):
        OverheadFusionEvaluator(wrong, "overhead_fusion_toy_val")
    with pytest.raises(ConfigDataMismatch, match="set MODEL.OVERHEAD_FUSION.IGNORE_VALUE 255"):
        run_dataset_checks(tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.IGNORE_VALUE", "0"]), names)
    other = tiny_cfg(opts=["MODEL.META_ARCHITECTURE", "GeneralizedRCNN"])
    other.MODEL.OVERHEAD_FUSION.NUM_CLASSES = 2
    run_dataset_checks(other, names)


def test_truncated_cloud_photo_is_left_out_with_its_name(tmp_path, tiny_cfg, caplog):
    # OpenCV decodes a truncated JPEG with a warning only: it was blended in as a cloud.
    rng = np.random.default_rng(0)
    for name in ("c1.png", "c2.jpg"):
        _write(tmp_path / "clouds" / name, rng.integers(0, 256, (40, 40, 3), np.uint8))
    _truncate(tmp_path / "clouds" / "c2.jpg")
    assert cv2.imread(str(tmp_path / "clouds" / "c2.jpg")) is not None
    cfg = tiny_cfg(opts=["INPUT.OVERHEAD_FUSION.CLOUD_TEXTURE_DIR", str(tmp_path / "clouds")])
    with caplog.at_level(logging.WARNING):
        mapper = OverheadFusionDatasetMapper(cfg, is_train=True)
    assert mapper.cloud_textures.shape == (1, 3, 32, 32)
    assert "skipped 1 unreadable cloud images" in caplog.text and "c2.jpg" in caplog.text


def test_trainer_evaluation_reports_the_excluded_tile(tmp_path, tiny_cfg):
    """The same through ``OverheadFusionTrainer.test`` with a model and two repeats."""
    for i, key in enumerate(("t1", "t2", "t3")):
        _pair(tmp_path, key, seed=i)
    _truncate(tmp_path / "labels" / "t3.png")
    name = "overhead_fusion_test_trainer_tiles_val"
    register_tiled_dataset(
        name, str(tmp_path / "images"), str(tmp_path / "labels"), "city_osm", "", "", 0, 1
    )
    cfg = tiny_cfg(opts=["DATASETS.TEST", f"('{name}',)", "TEST.OVERHEAD_FUSION.REPEATS", "2"])
    results = OverheadFusionTrainer.test(cfg, build_model(cfg).eval())
    assert results["records"]["evaluated"] == 2.0 and results["records"]["excluded"] == 1.0
    assert np.isfinite(results["fusion"]["mIoU"])
