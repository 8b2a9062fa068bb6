"""Bad input through the GRMNet data pipeline (SketchyScene-Matching loader, mapper, evaluator,
start-up checks).

Each fault is planted in a small SketchyScene-layout folder written here: four sketches with a
car, a cloud and a tree, three expressions each. The loader decodes every drawing, so faults in
the files are excluded at load in both modes; the mapper's own policy is tested on files
damaged after loading.
"""

import json
import logging
import os
import uuid

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import scipy.io
import torch
from detectron2.data import DatasetCatalog, get_detection_dataset_dicts
from detectron2.structures import Boxes, Instances

from d2common.checks import ConfigDataMismatch
from d2common.data import get_load_report, register_dataset_once
from d2common.data.validation import BadSampleError
from d2common.registry import EVALUATOR_REGISTRY
from d2common.testing import plugin_cfg
from grmnet.data import GRMDatasetMapper, load_sketchyscene_matching
from grmnet.data.categories import SKETCHYSCENE_CATEGORIES
from grmnet.data.sketchyscene import (
    class_gt_path,
    drawing_path,
    expressions_path,
    instance_gt_path,
)
from grmnet.engine import GRMTrainer

SIZE = 96
KEYS = (1, 2, 3, 4)
BAD = 2  # the sketch every fault is planted in
# (instance id, CLASS_GT id (1-based): car, cloud, tree)
INSTANCES = ((3, 14), (7, 18), (9, 43))
EXPRESSIONS = {"the car": [0], "the cloud": [1], "the tree": [2]}
VOCAB = ["<pad>", "<unk>", "the", "car", "cloud", "tree", "left", "dog"]


def write_sketch(root, key, size=(SIZE, SIZE), drawing_size=None):
    """One sketch: a textured drawing and INSTANCE_GT / CLASS_GT with three rectangles."""
    for sub in ("DRAWING_GT", "CLASS_GT", "INSTANCE_GT"):
        os.makedirs(os.path.join(root, "val", sub), exist_ok=True)
    h, w = size
    inst = np.zeros((h, w), np.uint16)
    cls = np.zeros((h, w), np.uint8)
    for n, (iid, cid) in enumerate(INSTANCES):
        y, x = 2 + n * (h // 3), 2 + n * (w // 4)
        inst[y : y + h // 4, x : x + w // 4] = iid
        cls[y : y + h // 4, x : x + w // 4] = cid
    dh, dw = drawing_size or size
    drawing = np.random.default_rng(key).integers(0, 256, (dh, dw), dtype=np.uint8)
    cv2.imwrite(drawing_path(root, "val", key), drawing)
    scipy.io.savemat(class_gt_path(root, "val", key), {"CLASS_GT": cls})
    scipy.io.savemat(instance_gt_path(root, "val", key), {"INSTANCE_GT": inst})


def write_root(root):
    root = str(root)
    for key in KEYS:
        write_sketch(root, key)
    entries = [{"key": k, "sen_instIdx_map": dict(EXPRESSIONS)} for k in KEYS]
    save_entries(root, entries)
    with open(os.path.join(root, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    return entries


def save_entries(root, entries):
    with open(expressions_path(str(root), "val"), "w") as f:
        json.dump(entries, f)


def register(root) -> str:
    """Registers the folder's val split under a fresh name, as the builtin splits are."""
    name = f"grmbad_{uuid.uuid4().hex[:8]}"
    register_dataset_once(
        name,
        lambda: load_sketchyscene_matching(str(root), "val"),
        thing_classes=list(SKETCHYSCENE_CATEGORIES),
        vocab_file=os.path.join(str(root), "vocab.txt"),
        expressions_file=expressions_path(str(root), "val"),
        evaluator_type="coco",
    )
    return name


def truncate(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) * 2 // 3])


# Each fault plants one problem in sketch BAD; returns (path named, reason kind, number of
# expressions excluded).
def _missing(root, entries):
    os.remove(drawing_path(root, "val", BAD))
    return drawing_path(root, "val", BAD), "file not found", 3


def _truncated(root, entries):
    truncate(drawing_path(root, "val", BAD))
    return drawing_path(root, "val", BAD), "truncated or corrupt image", 3


def _corrupt(root, entries):
    with open(instance_gt_path(root, "val", BAD), "wb") as f:
        f.write(b"MATLAB 5.0 MAT-file" + os.urandom(200))
    return instance_gt_path(root, "val", BAD), "unreadable .mat file", 3


def _unpaired(root, entries):
    os.remove(class_gt_path(root, "val", BAD))  # a drawing without its CLASS_GT
    return class_gt_path(root, "val", BAD), "file not found", 3


def _duplicate_name(root, entries):
    save_entries(root, entries + [{"key": BAD, "sen_instIdx_map": {"the car": [0]}}])
    return drawing_path(root, "val", BAD), "duplicate sketch key", 4


def _size_mismatch(root, entries):
    write_sketch(root, BAD, drawing_size=(SIZE - 16, SIZE))
    return class_gt_path(root, "val", BAD), "size mismatch", 3


def _unknown_label(root, entries):
    cls = scipy.io.loadmat(class_gt_path(root, "val", BAD))["CLASS_GT"]
    cls[cls == 18] = 99  # the cloud's label is not one of the 46 classes
    scipy.io.savemat(class_gt_path(root, "val", BAD), {"CLASS_GT": cls})
    return expressions_path(root, "val"), "instance without a valid category", 1


def _empty_annotation(root, entries):
    entries[BAD - 1]["sen_instIdx_map"]["the dog"] = []
    entries[BAD - 1]["sen_instIdx_map"][" , "] = [0]
    save_entries(root, entries)
    return (
        expressions_path(root, "val"),
        ("expression refers to no instance", "empty expression"),
        2,
    )


def _tiny(root, entries):
    write_sketch(root, BAD, size=(16, 16))
    return drawing_path(root, "val", BAD), "image of size 16x16 is too small", 3


FAULTS = {
    "missing file": _missing,
    "truncated file": _truncated,
    "corrupt file": _corrupt,
    "unpaired file": _unpaired,
    "duplicate name": _duplicate_name,
    "size mismatch": _size_mismatch,
    "unknown label value": _unknown_label,
    "empty annotation": _empty_annotation,
    "tiny image": _tiny,
}


def _cfg(name, *extra):
    return plugin_cfg(
        "configs/GRMNet/demo.yaml",
        ["MODEL.DEVICE", "cpu", "DATALOADER.NUM_WORKERS", "0"]
        + ["DATASETS.TRAIN", f"('{name}',)", "DATASETS.TEST", f"('{name}',)"]
        + ["INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MIN_SIZE_TEST", "96"]
        + list(extra),
    )


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_bad_input_matrix(tmp_path, fault, mode):
    """Every fault is excluded at load in both modes, counted with its file and reason; what
    is left maps without a skip or an error, and only intact sketches remain."""
    entries = write_root(tmp_path)
    path, reason, num_excluded = FAULTS[fault](str(tmp_path), entries)
    reasons = (reason,) if isinstance(reason, str) else reason
    name = register(tmp_path)
    is_train = mode == "train"
    dicts = get_detection_dataset_dicts([name], filter_empty=is_train)
    report = get_load_report(name)
    assert len(report.excluded) == num_excluded and report.num_loaded == len(dicts)
    assert all(p == str(path) and r.startswith(reasons) for p, r in report.excluded)
    assert {r.split(" (")[0] for _, r in report.excluded} <= set(reasons)
    kept_of_bad = {"unknown label value": 2, "empty annotation": 3}.get(fault, 0)
    assert len(dicts) == 3 * (len(KEYS) - 1) + kept_of_bad
    assert sum(d["sketch_id"] == BAD for d in dicts) == kept_of_bad
    mapper = GRMDatasetMapper(_cfg(name), is_train)
    outputs = [mapper(d) for d in dicts]
    assert all(o is not None for o in outputs) and mapper.num_skipped == 0


def test_unknown_label_values_are_warned_with_their_fraction(tmp_path):
    entries = write_root(tmp_path)
    _unknown_label(str(tmp_path), entries)
    logger = logging.getLogger("d2common.data.validation")
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    try:
        records = load_sketchyscene_matching(str(tmp_path), "val")
    finally:
        logger.removeHandler(handler)
    cls = scipy.io.loadmat(class_gt_path(str(tmp_path), "val", BAD))["CLASS_GT"]
    expected = f"{100 * (cls == 99).mean():.3g}% of the pixels have a value outside"
    assert any(class_gt_path(str(tmp_path), "val", BAD) in m and expected in m for m in messages)
    kept = {(r["sketch_id"], r["expression"]) for r in records}
    assert (BAD, "the car") in kept and (BAD, "the cloud") not in kept


def test_repeated_instance_index_is_one_instance(tmp_path):
    """The found case: "the dog": [6, 6] gave two copies of one ground-truth instance."""
    entries = write_root(tmp_path)
    entries[0]["sen_instIdx_map"] = {"the car": [0, 0], "the tree": [2, 0, 2]}
    save_entries(str(tmp_path), entries)
    records = load_sketchyscene_matching(str(tmp_path), "val")
    by_expression = {r["expression"]: r for r in records if r["sketch_id"] == KEYS[0]}
    car = by_expression["the car"]["annotations"]
    assert [a["instance_id"] for a in car] == [3]
    assert [a["instance_id"] for a in by_expression["the tree"]["annotations"]] == [9, 3]
    assert records.load_report.excluded == []


def _damage_truncated(path):
    truncate(path)


def _damage_missing(path):
    os.remove(path)


def _damage_tiny(path):
    cv2.imwrite(path, np.zeros((16, 16), np.uint8))


def _damage_resized(path):
    cv2.imwrite(path, np.zeros((SIZE, SIZE + 8), np.uint8))


DAMAGE = {
    "truncated file": (_damage_truncated, "truncated or corrupt image"),
    "missing file": (_damage_missing, "file not found"),
    "tiny image": (_damage_tiny, "image of size 16x16 is too small"),
    "size mismatch": (_damage_resized, "size mismatch"),
}


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_mapper_on_a_drawing_damaged_after_loading(tmp_path, damage, mode):
    """Training skips, warns and counts; testing raises naming the file (never substitutes)."""
    write_root(tmp_path)
    records = load_sketchyscene_matching(str(tmp_path), "val")
    damage_fn, reason = DAMAGE[damage]
    path = drawing_path(str(tmp_path), "val", BAD)
    damage_fn(path)
    name = register(tmp_path)  # only for the config's vocabulary
    mapper = GRMDatasetMapper(_cfg(name), mode == "train")
    if mode == "train":
        outputs = [mapper(r) for r in records]
        assert [o is None for o in outputs] == [r["file_name"] == path for r in records]
        assert mapper.num_skipped == 3 and list(mapper.skipper.reasons) == [reason.split(" (")[0]]
    else:
        with pytest.raises(BadSampleError, match=reason) as info:
            for r in records:
                mapper(r)
        assert info.value.path == path


def _ground_truth_outputs(record):
    h, w = record["height"], record["width"]
    anns = record["annotations"]
    inst = Instances((h, w))
    inst.pred_boxes = Boxes(torch.tensor([a["bbox"] for a in anns], dtype=torch.float32))
    inst.pred_masks = torch.from_numpy(
        np.stack([mask_util.decode(a["segmentation"]).astype(bool) for a in anns])
    )
    inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.long)
    inst.scores = torch.ones(len(anns))
    return {"instances": inst}


def test_evaluation_scores_exactly_the_loaded_records(tmp_path):
    entries = write_root(tmp_path)
    _missing(str(tmp_path), entries)
    name = register(tmp_path)
    cfg = _cfg(name)
    evaluator = EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, name, str(tmp_path / "eval"))
    evaluator.reset()
    records = DatasetCatalog.get(name)
    for record in records:
        evaluator.process([{"image_id": record["image_id"]}], [_ground_truth_outputs(record)])
    results = evaluator.evaluate()
    assert results["segm"]["AP"] == pytest.approx(100.0)
    assert dict(results["records"]) == {"evaluated": 9.0, "candidates": 12.0, "excluded": 3.0}


def test_class_count_and_vocabulary_are_checked_at_start_up(tmp_path):
    write_root(tmp_path)
    name = register(tmp_path)
    with pytest.raises(ConfigDataMismatch, match=r"set MODEL\.ROI_HEADS\.NUM_CLASSES 46"):
        GRMTrainer.build_test_loader(_cfg(name, "MODEL.ROI_HEADS.NUM_CLASSES", "10"), name)
    small = tmp_path / "small_vocab.txt"
    small.write_text("\n".join(v for v in VOCAB if v != "cloud"))
    # "cloud" is 4 of the 24 words of the 12 expressions
    match = r"^16\.7% .*'cloud'.*Set MODEL\.GRMNET\.LANGUAGE\.VOCAB_FILE .*vocab\.txt"
    with pytest.raises(ConfigDataMismatch, match=match):
        GRMTrainer.build_test_loader(
            _cfg(name, "MODEL.GRMNET.LANGUAGE.VOCAB_FILE", str(small)), name
        )
    assert GRMTrainer.build_test_loader(_cfg(name), name) is not None  # the dataset's own
    # A word no vocabulary knows is read as <unk> with a warning, not an error.
    entries = json.loads(open(expressions_path(str(tmp_path), "val")).read())
    entries[0]["sen_instIdx_map"]["the zebra car"] = [0]
    save_entries(str(tmp_path), entries)
    assert GRMTrainer.build_test_loader(_cfg(name), name) is not None
