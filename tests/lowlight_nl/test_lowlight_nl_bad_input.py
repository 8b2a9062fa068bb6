"""Bad input through the LowLightNL data pipeline (COCO loader, mapper, evaluator, start-up).

Each fault is planted in a small COCO-format folder written here; the pipeline runs as the
trainer runs it (``get_detection_dataset_dicts`` with the train / test filtering, then the
mapper on every record) in training and in test mode.
"""

import json
import os
import uuid

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, get_detection_dataset_dicts
from detectron2.evaluation import COCOEvaluator as StockCOCOEvaluator
from detectron2.structures import Boxes, Instances

from d2common.checks import ConfigDataMismatch
from d2common.data import get_load_report
from d2common.data.validation import BadSampleError
from d2common.registry import EVALUATOR_REGISTRY
from d2common.testing import plugin_cfg, shared_data
from lowlight_nl.data.datasets import register_cfg_directories, register_coco_directory
from lowlight_nl.data.mapper import LowLightDatasetMapper
from lowlight_nl.engine import LowLightTrainer

CONFIG = "configs/LowLightNL/maskrcnn_R18_FPN_200it_toy.yaml"
SMALL = ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "128"]
SMALL += ["INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "128", "DATALOADER.NUM_WORKERS", "0"]
CATEGORIES = ["circle", "square", "triangle"]


def write_coco_folder(folder, num_images=4, size=(48, 64), num_categories=3):
    """A COCO folder ``folder/annotations/instances_val.json`` + ``folder/val/*.png``: image k
    holds two squares of categories k % n + 1 and (k + 1) % n + 1. Returns the JSON dict."""
    (folder / "annotations").mkdir(parents=True)
    (folder / "val").mkdir()
    h, w = size
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for k in range(num_images):
        name = f"{k:04d}.png"
        image = rng.integers(10 * k, 10 * k + 60, (h, w, 3), dtype=np.uint8)  # texture
        boxes = [(4 + k, 6, 16, 14), (30, 20 + k, 12, 18)]  # x, y, w, h
        for j, (x, y, bw, bh) in enumerate(boxes):
            image[y : y + bh, x : x + bw] = 200
            annotations.append(
                {
                    "id": 1 + len(annotations),
                    "image_id": 100 + k,
                    "category_id": (k + j) % num_categories + 1,
                    "bbox": [x, y, bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                    "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]],
                }
            )
        cv2.imwrite(str(folder / "val" / name), image)
        images.append({"id": 100 + k, "file_name": name, "height": h, "width": w})
    names = CATEGORIES + [f"class{i}" for i in range(len(CATEGORIES), num_categories)]
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names[:num_categories])],
    }
    save_json(folder, data)
    return data


def save_json(folder, data):
    with open(folder / "annotations" / "instances_val.json", "w") as f:
        json.dump(data, f)


def register(folder) -> str:
    """Registers the folder under a fresh name (the catalogs are process-wide)."""
    (name,) = register_coco_directory(f"llbad_{uuid.uuid4().hex[:8]}", str(folder))
    return name


def image_path(folder, data, k):
    return str(folder / "val" / data["images"][k]["file_name"])


# Each fault plants one problem on image 1 and returns the path the pipeline must name.
def _missing(folder, data):
    os.remove(image_path(folder, data, 1))


def _truncated(folder, data):
    path = image_path(folder, data, 1)
    cv2.imwrite(path.replace(".png", ".jpg"), cv2.imread(path))
    payload = open(path.replace(".png", ".jpg"), "rb").read()
    os.remove(path.replace(".png", ".jpg"))
    with open(path, "wb") as f:  # a JPEG cut in the middle of its entropy-coded data
        f.write(payload[: len(payload) // 2])


def _corrupt(folder, data):
    with open(image_path(folder, data, 1), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + os.urandom(300))


def _unpaired(folder, data):
    # An annotation whose image is not listed: there is nothing to pair it with.
    data["annotations"].append(dict(data["annotations"][0], id=999, image_id=12345))
    save_json(folder, data)


def _duplicate_name(folder, data):
    data["images"][2]["file_name"] = data["images"][1]["file_name"]
    save_json(folder, data)


def _duplicate_id(folder, data):
    data["images"][2]["id"] = data["images"][1]["id"]
    for a in data["annotations"]:
        a["image_id"] = 101 if a["image_id"] == 102 else a["image_id"]
    save_json(folder, data)


def _size_mismatch(folder, data):
    data["images"][1]["height"] = 60
    save_json(folder, data)


def _unknown_label(folder, data):
    data["annotations"][2]["category_id"] = 77  # image 1's first object
    save_json(folder, data)


def _empty_annotation(folder, data):
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 101]
    save_json(folder, data)


def _tiny(folder, data):
    cv2.imwrite(image_path(folder, data, 1), np.full((8, 8, 3), 90, np.uint8))
    data["images"][1].update(height=8, width=8)
    save_json(folder, data)


# fault -> (planting function, expected outcome, reason kind). Outcomes:
#   "excluded": dropped at load in both modes, with the reason in the load report;
#   "skip_or_raise": reaches the mapper; training skips and counts it, testing raises;
#   "ignored": the loaded records are exactly the intact ones (nothing to exclude);
#   "no_instances": training drops the image (detectron2's empty filter), testing scores it.
FAULTS = {
    "missing file": (_missing, "excluded", "file not found"),
    "truncated file": (_truncated, "skip_or_raise", "truncated or corrupt image"),
    "corrupt file": (_corrupt, "skip_or_raise", "not a readable image"),
    "unpaired file": (_unpaired, "ignored", None),
    "duplicate name": (_duplicate_name, "excluded", "duplicate file name"),
    "duplicate image id": (_duplicate_id, "excluded", "duplicate image id"),
    "size mismatch": (_size_mismatch, "skip_or_raise", "size mismatch"),
    "unknown label value": (_unknown_label, "excluded", "unknown category id"),
    "empty annotation": (_empty_annotation, "no_instances", None),
    "tiny image": (_tiny, "skip_or_raise", "image of size 8x8 is too small"),
}


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_bad_input_matrix(tmp_path, fault, mode):
    plant, outcome, reason = FAULTS[fault]
    data = write_coco_folder(tmp_path)
    bad_path = image_path(tmp_path, data, 1)
    plant(tmp_path, data)
    name = register(tmp_path)
    is_train = mode == "train"
    dicts = get_detection_dataset_dicts([name], filter_empty=is_train)
    report = get_load_report(name)
    files = [d["file_name"] for d in dicts]
    mapper = LowLightDatasetMapper(plugin_cfg(CONFIG, SMALL), is_train)

    if outcome == "excluded":
        assert bad_path not in files and len(dicts) == report.num_loaded
        assert report.excluded and all(r.startswith(reason) for _, r in report.excluded)
        assert bad_path in [p for p, _ in report.excluded]
        outputs = [mapper(d) for d in dicts]
        assert all(o is not None for o in outputs)
        return
    assert report.excluded == []
    if outcome == "ignored":
        assert files == [image_path(tmp_path, data, k) for k in range(4)]
        assert all(mapper(d) is not None for d in dicts)
    elif outcome == "no_instances":
        assert (bad_path in files) != is_train
        outputs = [mapper(d) for d in dicts]
        assert all(o is not None for o in outputs)
        if is_train:
            assert all(len(o["instances"]) == 2 for o in outputs)
    elif is_train:
        outputs = [mapper(d) for d in dicts]
        assert [o is None for o in outputs] == [f == bad_path for f in files]
        assert mapper.num_skipped == 1 and sum(mapper.skipper.reasons.values()) == 1
        (kind,) = mapper.skipper.reasons
        assert kind.startswith(reason)
    else:
        with pytest.raises(BadSampleError, match=reason) as info:
            for d in dicts:
                mapper(d)
        assert info.value.path == bad_path and "cannot skip or replace" in str(info.value)


def test_truncated_jpeg_is_refused_although_opencv_decodes_it(tmp_path):
    """The found case: OpenCV decodes a truncated JPEG with a warning only."""
    data = write_coco_folder(tmp_path, num_images=2)
    _truncated(tmp_path, data)
    path = image_path(tmp_path, data, 1)
    # OpenCV 4.x decodes this file with only a "Premature end of JPEG file" warning.
    record = next(d for d in DatasetCatalog.get(register(tmp_path)) if d["file_name"] == path)
    with pytest.raises(BadSampleError, match="truncated"):
        LowLightDatasetMapper(plugin_cfg(CONFIG, SMALL), False)(record)


def _ground_truth_outputs(record):
    """The record's annotations as a model output (boxes only, score 1)."""
    anns = record["annotations"]
    inst = Instances((record["height"], record["width"]))
    xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
    inst.pred_boxes = Boxes(torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1))
    inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.long)
    inst.scores = torch.ones(len(anns))
    return {"instances": inst}


def _evaluate(evaluator, records):
    evaluator.reset()
    for record in records:
        evaluator.process([{"image_id": record["image_id"]}], [_ground_truth_outputs(record)])
    return evaluator.evaluate()


def test_evaluation_scores_exactly_the_loaded_images(tmp_path):
    """The found case: a JSON lists an image whose file is missing. The record is dropped at
    load; ground truth fed back as predictions must score bbox AP 100 (detectron2's stock
    COCOEvaluator scores every image of the JSON and counts the dropped one as missed)."""
    data = write_coco_folder(tmp_path / "data", num_images=4)
    _missing(tmp_path / "data", data)
    name = register(tmp_path / "data")
    records = DatasetCatalog.get(name)
    assert len(records) == 3
    cfg = plugin_cfg(CONFIG, SMALL)
    evaluator = EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, name, str(tmp_path / "eval"))
    results = _evaluate(evaluator, records)
    assert results["bbox"]["AP"] == pytest.approx(100.0)
    assert dict(results["records"]) == {"evaluated": 3.0, "candidates": 4.0, "excluded": 1.0}
    written = json.loads((tmp_path / "eval" / "evaluation_records.json").read_text())
    assert written["excluded_files"] == [{"file": image_path(tmp_path / "data", data, 1),
                                          "reason": "file not found"}]  # fmt: skip
    stock = StockCOCOEvaluator(name, output_dir=str(tmp_path / "stock"))
    assert _evaluate(stock, records)["bbox"]["AP"] < 99.0  # what was reported before


def test_predictions_must_cover_every_loaded_image_once(tmp_path):
    data = write_coco_folder(tmp_path / "data", num_images=3)
    name = register(tmp_path / "data")
    records = DatasetCatalog.get(name)
    cfg = plugin_cfg(CONFIG, SMALL)
    evaluator = EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, name, str(tmp_path / "eval"))
    from d2common.evaluation_coverage import EvaluationCoverageError

    with pytest.raises(EvaluationCoverageError, match="more than once"):
        _evaluate(evaluator, records + records[:1])  # a substituted sample
    with pytest.raises(EvaluationCoverageError, match="not scored"):
        _evaluate(evaluator, records[1:])
    assert data["images"][0]["id"] == records[0]["image_id"]


def _start_up_cfg(folder, prefix, num_classes):
    cfg = plugin_cfg(
        CONFIG,
        SMALL
        + ["DATASETS.LOWLIGHT_NL.COCO_DIRS", f"['{prefix}={folder}']"]
        + ["DATASETS.TRAIN", f"('{prefix}_val',)", "DATASETS.TEST", f"('{prefix}_val',)"]
        + ["MODEL.ROI_HEADS.NUM_CLASSES", str(num_classes)],
    )
    register_cfg_directories(cfg)
    return cfg


def test_class_count_is_checked_at_start_up(tmp_path):
    """The found case: a COCO folder with more classes than MODEL.ROI_HEADS.NUM_CLASSES died
    in the loss ("Target 25 is out of bounds"); --eval-only went through silently."""
    write_coco_folder(tmp_path, num_categories=5)
    prefix = f"llcls_{uuid.uuid4().hex[:8]}"
    cfg = _start_up_cfg(tmp_path, prefix, num_classes=3)
    match = r"has 5 classes .* set MODEL\.ROI_HEADS\.NUM_CLASSES 5"
    with pytest.raises(ConfigDataMismatch, match=match):
        LowLightTrainer.build_train_loader(cfg)
    with pytest.raises(ConfigDataMismatch, match=match):  # the --eval-only path
        LowLightTrainer.build_test_loader(cfg, f"{prefix}_val")
    good = _start_up_cfg(tmp_path, prefix, num_classes=5)
    assert LowLightTrainer.build_test_loader(good, f"{prefix}_val") is not None
    other = plugin_cfg(None, ["MODEL.ROI_HEADS.NUM_CLASSES", "3"])  # not a LowLightNL config
    from lowlight_nl.data.checks import check_lowlight_nl_dataset

    assert check_lowlight_nl_dataset(other, f"{prefix}_val") is None


def test_evaluation_on_real_coco_images_with_one_missing(tmp_path):
    """The same case on real COCO val2017 images and annotations (80 classes, crowd regions)."""
    coco = shared_data("tiny_coco")
    data = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    images = sorted(data["images"], key=lambda im: im["file_name"])[:8]
    ids = {im["id"] for im in images}
    data["images"] = images
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in ids]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val").mkdir()
    for im in images[1:]:  # the first image's file is missing
        os.symlink(coco / "val2017" / im["file_name"], tmp_path / "val" / im["file_name"])
    save_json(tmp_path, data)
    name = register(tmp_path)
    records = DatasetCatalog.get(name)
    assert len(records) == 7
    cfg = plugin_cfg("configs/LowLightNL/maskrcnn_R50_FPN_pretrained_coco_lowlight.yaml")
    evaluator = EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, name, str(tmp_path / "eval"))
    assert _evaluate(evaluator, records)["bbox"]["AP"] == pytest.approx(100.0)
    stock = StockCOCOEvaluator(name, output_dir=str(tmp_path / "stock"))
    assert _evaluate(stock, records)["bbox"]["AP"] < 100.0
