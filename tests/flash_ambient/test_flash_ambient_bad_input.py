"""The bad-input matrix of the FAID loader and mapper, in training and in test mode.

Training mode is a training split as registered: headers read at load, the training mapper
decodes, skips, warns and counts. Test mode is a test split: every image decoded at load, and
the test mapper raises instead of skipping. A fault that cannot occur for FAID (label values:
the target is an RGB photograph) is explained in the bad-input table, not tested here.
"""

import csv
import logging
import os

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader

from d2common.checks import ConfigDataMismatch, run_dataset_checks
from d2common.data.validation import BadSampleError
from d2common.evaluation_coverage import EvaluationCoverageError
from d2common.testing import plugin_cfg
from flash_ambient.data import FlashAmbientDatasetMapper, load_faid_pairs
from flash_ambient.evaluation import FlashAmbientEvaluator

GOOD = ("Objects_001", "People_002")


def _write(path, h=24, w=32, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)


def _pair(images, name, h=24, w=32, ambient_hw=None, seed=0):
    _write(images / f"{name}_flash.png", h, w, seed)
    _write(images / f"{name}_ambient.png", *(ambient_hw or (h, w)), seed + 1)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# Each fault writes one bad sample named Rooms_009 next to the good pairs and returns the file at
# fault. Expected behaviour per mode: ("excluded", reason) at load, ("skipped", reason) by the
# training mapper, ("raises", reason) by the test mapper, ("load error", message) for the whole
# dataset. The reason is matched against the report / error, which names the file.
def _missing(images):
    # Listed in the split, no file on disk: the report names the split file and the pair.
    return "split.txt: Rooms_009"


def _truncated(images):
    _pair(images, "Rooms_009")
    _truncate(images / "Rooms_009_flash.png")
    return images / "Rooms_009_flash.png"


def _corrupt(images):
    _pair(images, "Rooms_009")
    (images / "Rooms_009_ambient.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    return images / "Rooms_009_ambient.png"


def _unpaired(images):
    _write(images / "Rooms_009_flash.png")
    return images / "Rooms_009_flash.png"


def _duplicate(images):
    # The same pair name in a second folder: one flash would be paired with the other ambient.
    _pair(images / "a", "Rooms_009", seed=3)
    _pair(images / "b", "Rooms_009", seed=5)
    return images / "b" / "Rooms_009_flash.png"


def _size_mismatch(images):
    # The ambient image in the other orientation (a rotated copy, or a file of another pair).
    _pair(images, "Rooms_009", 24, 32, ambient_hw=(32, 24))
    return images / "Rooms_009_ambient.png"


def _empty_annotation(images):
    # The ambient image is the target ("annotation") of a pair: an empty file.
    _pair(images, "Rooms_009")
    (images / "Rooms_009_ambient.png").write_bytes(b"")
    return images / "Rooms_009_ambient.png"


def _tiny(images):
    _pair(images, "Rooms_009", 8, 12)
    return images / "Rooms_009_flash.png"


_SIZES = "does not match its flash image"
FAULTS = {
    "missing file": (_missing, ("excluded", "listed in the split"), None),
    "truncated file": (_truncated, ("skipped", "truncated"), ("excluded", "truncated")),
    "corrupt file": (_corrupt, ("excluded", "truncated or corrupt image"), None),
    "unpaired file": (_unpaired, ("excluded", "unpaired: no ambient image"), None),
    "duplicate name": (_duplicate, ("load error", "duplicate FAID image name"), None),
    "size mismatch": (_size_mismatch, ("excluded", _SIZES), None),
    "empty annotation": (_empty_annotation, ("excluded", "empty file"), None),
    "tiny image": (_tiny, ("excluded", "8x12 is too small (needs 16x16)"), None),
}


def _dataset(tmp_path, fault):
    images = tmp_path / "images"
    for i, name in enumerate(GOOD):
        _pair(images, name, seed=10 * i)
    culprit = FAULTS[fault][0](images)
    split = tmp_path / "split.txt"
    split.write_text("\n".join(GOOD + ("Rooms_009",)) + "\n")
    return images, split, culprit


def _mapper(is_train):
    return FlashAmbientDatasetMapper(is_train, resize=(32, 24), crop_base=24, crop_size=16)


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_bad_input_matrix(tmp_path, caplog, fault, mode):
    images, split, culprit = _dataset(tmp_path, fault)
    _, train_expect, test_expect = FAULTS[fault]
    kind, reason = train_expect if mode == "train" or test_expect is None else test_expect
    full_decode = mode == "test"
    if kind == "load error":
        with pytest.raises(ValueError, match=reason) as info:
            load_faid_pairs(str(images), str(split), full_decode=full_decode)
        assert str(images / "a" / "Rooms_009_flash.png") in str(info.value)
        assert str(culprit) in str(info.value)
        return
    with caplog.at_level(logging.WARNING):
        records = load_faid_pairs(str(images), str(split), full_decode=full_decode)
    report = records.load_report
    mapper = _mapper(mode == "train")
    if kind == "excluded":
        assert [r["image_id"] for r in records] == list(GOOD)
        assert report.num_candidates == 3 and len(report.excluded) == 1
        path, why = report.excluded[0]
        assert reason in why and str(culprit) in path
        assert "loaded 2 of 3 records; 1 excluded" in caplog.text
        assert all(mapper(r) is not None for r in records)
        return
    # The fault passes a header read: the loader keeps the pair, the training mapper skips it.
    assert kind == "skipped"
    assert [r["image_id"] for r in records] == list(GOOD) + ["Rooms_009"]
    assert report.excluded == []
    with caplog.at_level(logging.WARNING):
        outputs = [mapper(r) for r in records]
    assert [o is None for o in outputs] == [False, False, True]
    assert mapper.num_skipped == 1 and str(culprit) in caplog.text and reason in caplog.text


@pytest.mark.parametrize("mode", ["train", "test"])
def test_file_lost_after_loading(tmp_path, caplog, mode):
    """A file that disappears or breaks between loading and reading: training skips and counts,
    an evaluation stops naming the file (it never scores another pair in its place)."""
    images, split, _ = _dataset(tmp_path, "missing file")
    records = load_faid_pairs(str(images), str(split), full_decode=mode == "test")
    os.remove(images / "People_002_ambient.png")
    mapper = _mapper(mode == "train")
    assert mapper(records[0]) is not None
    if mode == "train":
        with caplog.at_level(logging.WARNING):
            assert mapper(records[1]) is None
        assert mapper.num_skipped == 1 and "People_002_ambient.png" in caplog.text
    else:
        with pytest.raises(BadSampleError, match="People_002_ambient.png.*file not found"):
            mapper(records[1])


def test_duplicate_pair_names_name_both_files(tmp_path):
    images = tmp_path / "images"
    _pair(images / "set1", "People_014", seed=1)
    _pair(images / "set2", "People_014", seed=2)
    with pytest.raises(ValueError, match="People_014_flash") as info:
        load_faid_pairs(str(images))
    for folder in ("set1", "set2"):
        assert str(images / folder / "People_014_flash.png") in str(info.value)


def _registered_faid(tmp_path, monkeypatch):
    """$DETECTRON2_DATASETS/faid with 3 good pairs, a truncated PNG and an orientation-mismatched
    pair in both splits (the registered flash_ambient_faid_{train,test} read it)."""
    root = tmp_path / "datasets"
    images = root / "faid" / "images"
    names = ["Objects_148", "People_014", "People_150"]
    for i, name in enumerate(names):
        _pair(images, name, seed=10 * i)
    _pair(images, "Rooms_001")
    _truncate(images / "Rooms_001_ambient.png")
    _pair(images, "Rooms_002", 24, 32, ambient_hw=(32, 24))
    (root / "faid" / "splits").mkdir()
    for split in ("train", "test"):
        (root / "faid" / "splits" / f"{split}.txt").write_text(
            "\n".join(names + ["Rooms_001", "Rooms_002"])
        )
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    return names


def test_test_split_is_evaluated_exactly_once_per_loaded_pair(tmp_path, monkeypatch):
    """The truncated and the mismatched pair are excluded at load with their reasons; each of the
    3 real pairs is scored once (detectron2's loader used to serve substitutes for them)."""
    names = _registered_faid(tmp_path, monkeypatch)
    name = "flash_ambient_faid_test"
    loader = build_detection_test_loader(
        DatasetCatalog.get(name), mapper=_mapper(False), num_workers=0
    )
    out = tmp_path / "inference"
    evaluator = FlashAmbientEvaluator(None, name, str(out))
    evaluator.reset()
    for batch in loader:
        evaluator.process(batch, [{"ambient": b["image"].float() / 255.0} for b in batch])
    results = evaluator.evaluate()
    assert dict(results["records"]) == {"evaluated": 3.0, "candidates": 5.0, "excluded": 2.0}
    assert 0 < results["flash_ambient"]["PSNR"] < 20  # noise flash vs noise ambient
    with open(out / "per_image_metrics.csv") as f:
        assert [r["image_id"] for r in csv.DictReader(f)] == names
    with open(out / "evaluation_records.json") as f:
        text = f.read()
    assert "evaluated 3 of 5 records; 2 excluded" in text
    assert "Rooms_001_ambient.png" in text and "Rooms_002_ambient.png" in text


def test_training_split_keeps_truncated_pairs_for_the_mapper_to_skip(tmp_path, monkeypatch):
    _registered_faid(tmp_path, monkeypatch)
    train = DatasetCatalog.get("flash_ambient_faid_train")
    ids = [r["image_id"] for r in train]
    assert "Rooms_001" in ids and "Rooms_002" not in ids  # header read: sizes only
    mapper = _mapper(True)
    assert [mapper(r) is None for r in train] == [i == "Rooms_001" for i in ids]


def test_evaluator_refuses_a_pair_scored_twice(tmp_path, monkeypatch):
    _registered_faid(tmp_path, monkeypatch)
    name = "flash_ambient_faid_test"
    records = DatasetCatalog.get(name)
    mapper, evaluator = _mapper(False), FlashAmbientEvaluator(None, name)
    evaluator.reset()
    for record in list(records) + [records[0]]:  # what a substituting loader did
        inputs = mapper(record)
        evaluator.process([inputs], [{"ambient": inputs["ambient"].float() / 255.0}])
    with pytest.raises(EvaluationCoverageError, match="Objects_148"):
        evaluator.evaluate()


def _cfg(*opts):
    return plugin_cfg("configs/FlashAmbient/demo.yaml", ["MODEL.DEVICE", "cpu"] + list(opts))


def test_start_up_checks(tmp_path):
    run_dataset_checks(_cfg(), ["flash_ambient_toy_train", "flash_ambient_toy_val"])
    with pytest.raises(ConfigDataMismatch, match=r"set INPUT.FLASH_AMBIENT.RESIZE \(128, 96\)"):
        run_dataset_checks(_cfg("INPUT.FLASH_AMBIENT.RESIZE", (96, 128)), ["flash_ambient_toy_val"])
    with pytest.raises(ConfigDataMismatch, match="INPUT.FLASH_AMBIENT.CROP_SIZE to at least 16"):
        run_dataset_checks(_cfg("INPUT.FLASH_AMBIENT.CROP_SIZE", 8), ["flash_ambient_toy_train"])
    with pytest.raises(ConfigDataMismatch, match="RESIZE to at least 16"):
        run_dataset_checks(_cfg("INPUT.FLASH_AMBIENT.RESIZE", (20, 12)), ["flash_ambient_toy_val"])
    MetadataCatalog.get("flash_ambient_test_not_pairs").set(evaluator_type="coco")
    with pytest.raises(ConfigDataMismatch, match="not a flash / ambient dataset"):
        run_dataset_checks(_cfg(), ["flash_ambient_test_not_pairs"])
    # Another project's config: nothing to check here.
    other = _cfg("INPUT.DATASET_MAPPER", "DatasetMapper", "INPUT.FLASH_AMBIENT.CROP_SIZE", 8)
    run_dataset_checks(other, ["flash_ambient_test_not_pairs"])
