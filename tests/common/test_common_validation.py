"""The shared decode-and-validate helpers, evaluation coverage, start-up checks, prepare runs."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from d2common.data.validation import (
    BadSampleError,
    SampleSkipper,
    check_same_size,
    check_unique_keys,
    finalize_records,
    read_image_checked,
    unknown_value_fraction,
    validate_records,
)
from d2common.prepare import ManifestMismatch, PrepareRun, atomic_write_bytes


def _noise(h=40, w=50, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path, image):
    assert cv2.imwrite(str(path), image)
    return str(path)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_file_is_rejected_although_opencv_decodes_it(tmp_path, ext):
    path = _write(tmp_path / f"img{ext}", _noise())
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) * 2 // 3])
    if ext == ".jpg":
        # The failure this guards against: OpenCV returns an image with only a warning.
        assert cv2.imread(path) is not None
    with pytest.raises(BadSampleError, match="truncated or corrupt") as info:
        read_image_checked(path, format="BGR")
    assert info.value.path == path


def test_missing_empty_corrupt_and_tiny_files(tmp_path):
    with pytest.raises(BadSampleError, match="file not found"):
        read_image_checked(str(tmp_path / "nope.png"))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadSampleError, match="empty file"):
        read_image_checked(str(tmp_path / "empty.png"))
    (tmp_path / "text.png").write_bytes(b"this is not an image" * 10)
    with pytest.raises(BadSampleError, match="not a readable image"):
        read_image_checked(str(tmp_path / "text.png"))
    tiny = _write(tmp_path / "tiny.png", _noise(1, 1))
    with pytest.raises(BadSampleError, match="1x1 is too small"):
        read_image_checked(tiny, min_size=(16, 16))


def test_full_decode_matches_opencv_and_keeps_16_bit(tmp_path):
    image = _noise()
    path = _write(tmp_path / "a.png", image)
    np.testing.assert_array_equal(read_image_checked(path, format="BGR"), image)
    np.testing.assert_array_equal(read_image_checked(path, format="RGB"), image[:, :, ::-1])
    depth = (np.arange(12 * 7, dtype=np.uint16).reshape(12, 7) * 700).astype(np.uint16)
    dpath = _write(tmp_path / "d.png", depth)
    out = read_image_checked(dpath)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, depth)


def test_exif_orientation_is_applied(tmp_path):
    image = np.zeros((20, 40, 3), dtype=np.uint8)
    image[:, :10] = 255  # white band on the left of a landscape image
    pil = Image.fromarray(image)
    exif = pil.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = str(tmp_path / "rot.jpg")
    pil.save(path, exif=exif.tobytes(), quality=95)
    out = read_image_checked(path, format="RGB")
    assert out.shape == (40, 20, 3)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # the band is now on top
    assert read_image_checked(path, format="RGB", apply_exif=False).shape == (20, 40, 3)


def test_label_checks_name_the_files(tmp_path):
    with pytest.raises(BadSampleError, match="does not match its image img.png") as info:
        check_same_size((10, 20, 3), (9, 18), "img.png", "lab.png")
    assert info.value.path == "lab.png"
    label = np.zeros((10, 10), dtype=np.uint8)
    label[0, :5] = 7
    assert unknown_value_fraction(label, [0, 1], "lab.png", max_fraction=0.1) == pytest.approx(0.05)
    with pytest.raises(BadSampleError, match="5% of the pixels"):
        unknown_value_fraction(label, [0, 1], "lab.png")
    colour = np.zeros((4, 4, 3), dtype=np.uint8)
    colour[0, 0] = (9, 9, 9)
    frac = unknown_value_fraction(colour, [(0, 0, 0), (255, 255, 255)], "c.png", max_fraction=1)
    assert frac == pytest.approx(1 / 16)


def test_duplicate_keys_name_both_files():
    check_unique_keys([("a", "x/a.png"), ("b", "x/b.png")])
    with pytest.raises(ValueError, match="People_014: d1/People_014.png, d2/People_014.png"):
        check_unique_keys(
            [("People_014", "d1/People_014.png"), ("People_014", "d2/People_014.png")]
        )


def test_skipper_skips_in_training_and_raises_in_testing():
    err = BadSampleError("a.png", "truncated or corrupt image (boom)")
    train = SampleSkipper(is_train=True, what="pair")
    assert train.skip_or_raise(err) is None and train.skip_or_raise(err) is None
    assert train.num_skipped == 2 and train.reasons["truncated or corrupt image"] == 2
    with pytest.raises(BadSampleError, match="cannot skip or replace a pair"):
        SampleSkipper(is_train=False, what="pair").skip_or_raise(err)


def test_load_report_counts_reasons():
    records = [{"file_name": f"{i}.png"} for i in range(4)]

    def check(r):
        if r["file_name"] in ("1.png", "3.png"):
            raise BadSampleError(r["file_name"], "file not found")

    out = validate_records(records, check, "folder")
    assert [r["file_name"] for r in out] == ["0.png", "2.png"]
    assert out.load_report.summary() == "loaded 2 of 4 records; 2 excluded: file not found (2)"
    assert finalize_records([], [], "x").load_report.summary() == "loaded 0 of 0 records"


# --------------------------------------------------------------------------------- coverage


def _register(name, records):
    from d2common.data import register_dataset_once

    register_dataset_once(name, lambda: finalize_records(records[0], records[1], name))


def test_coverage_reports_exclusions_and_refuses_duplicates_and_gaps(tmp_path):
    from detectron2.data import DatasetCatalog

    from d2common.evaluation_coverage import EvaluationCoverageError, check_coverage

    kept = [{"image_id": "a"}, {"image_id": "b"}]
    _register("cov_test_set", (kept, [("c.png", "truncated or corrupt image (x)")]))
    DatasetCatalog.get("cov_test_set")
    counts, sentence = check_coverage("cov_test_set", ["a", "b"], str(tmp_path))
    assert counts == {"evaluated": 2, "candidates": 3, "excluded": 1}
    assert sentence.endswith("evaluated 2 of 3 records; 1 excluded: truncated or corrupt image (1)")
    written = json.load(open(tmp_path / "evaluation_records.json"))
    assert written["excluded_files"] == [
        {"file": "c.png", "reason": "truncated or corrupt image (x)"}
    ]
    with pytest.raises(EvaluationCoverageError, match="more than once"):
        check_coverage("cov_test_set", ["a", "b", "a"])
    with pytest.raises(EvaluationCoverageError, match="1 not scored"):
        check_coverage("cov_test_set", ["a"])
    with pytest.raises(EvaluationCoverageError, match="1 not in the dataset"):
        check_coverage("cov_test_set", ["a", "b", "z"])


def _coco_set(tmp_path, name, num_images=3):
    """A registered COCO dataset of boxes whose JSON lists 3 images; the third one is excluded
    at load (its file is missing), as a loader does for a COCO folder with a missing image."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets.coco import convert_to_coco_dict
    from detectron2.structures import BoxMode

    records = []
    for i in range(num_images):
        boxes = [[5 + i, 6, 25 + i, 30], [30, 10 + i, 45, 35]]
        records.append(
            {
                "file_name": str(tmp_path / f"{i}.png"),
                "image_id": i + 1,
                "height": 48,
                "width": 64,
                "annotations": [
                    {"bbox": b, "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0, "iscrowd": 0}
                    for b in boxes
                ],
            }
        )
    kept, dropped = records[:-1], [(records[-1]["file_name"], "file not found")]
    full = f"{name}_full_json"
    DatasetCatalog.register(full, lambda: records)
    MetadataCatalog.get(full).set(thing_classes=["square"])
    json_file = tmp_path / f"{name}.json"
    json_file.write_text(json.dumps(convert_to_coco_dict(full)))
    _register(name, (kept, dropped))
    MetadataCatalog.get(name).set(thing_classes=["square"], json_file=str(json_file))
    return kept


def _instances(record, scores=True):
    import torch
    from detectron2.structures import Boxes, Instances

    inst = Instances((record["height"], record["width"]))
    boxes = [a["bbox"] for a in record["annotations"]] if scores else []
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.scores = torch.ones(len(boxes))
    inst.pred_classes = torch.zeros(len(boxes), dtype=torch.long)
    return {"instances": inst}


def test_coco_evaluator_scores_exactly_the_loaded_images(tmp_path):
    from d2common.engine import CoveredCOCOEvaluator

    kept = _coco_set(tmp_path, "cov_coco_gt")
    ev = CoveredCOCOEvaluator("cov_coco_gt", tasks=("bbox",), output_dir=str(tmp_path / "ev"))
    ev.reset()
    ev.process(kept, [_instances(r) for r in kept])
    results = ev.evaluate()
    assert results["bbox"]["AP"] == pytest.approx(100.0)
    assert results["records"] == {"evaluated": 2, "candidates": 3, "excluded": 1}
    ev.reset()
    ev.process(kept[:1], [_instances(kept[0])])
    with pytest.raises(Exception, match="1 not scored"):
        ev.evaluate()


def test_coco_evaluator_without_predictions_reports_zero_not_nan(tmp_path):
    from d2common.engine import CoveredCOCOEvaluator

    kept = _coco_set(tmp_path, "cov_coco_empty")
    ev = CoveredCOCOEvaluator("cov_coco_empty", tasks=("bbox",), output_dir=str(tmp_path / "ev"))
    ev.reset()
    ev.process(kept, [_instances(r, scores=False) for r in kept])
    results = ev.evaluate()
    assert results["bbox"]["AP"] == 0.0 and not np.isnan(results["bbox"]["AP50"])


# --------------------------------------------------------------------------- start-up checks


def test_num_classes_check_names_the_key():
    from detectron2.data import MetadataCatalog

    from d2common.checks import ConfigDataMismatch, check_num_classes
    from d2common.testing import plugin_cfg

    MetadataCatalog.get("check_eighty").set(thing_classes=[f"c{i}" for i in range(80)])
    cfg = plugin_cfg(None, ["MODEL.ROI_HEADS.NUM_CLASSES", "80"])
    check_num_classes(cfg, "check_eighty", "MODEL.ROI_HEADS.NUM_CLASSES")
    cfg = plugin_cfg(None, ["MODEL.ROI_HEADS.NUM_CLASSES", "8"])
    with pytest.raises(ConfigDataMismatch, match="set MODEL.ROI_HEADS.NUM_CLASSES 80"):
        check_num_classes(cfg, "check_eighty", "MODEL.ROI_HEADS.NUM_CLASSES")


# ----------------------------------------------------------------------------- prepare runs


def test_prepare_run_refuses_other_parameters_and_counts(tmp_path, capsys):
    out = tmp_path / "out"
    run = PrepareRun(str(out), {"seed": 1, "crf": True})
    target = str(out / "a.txt")
    assert run.needs(target)
    atomic_write_bytes(target, b"x")
    run.wrote(target)
    run.failed(str(out / "b.txt"), "truncated or corrupt image (premature end)")
    assert run.finish() == 1
    assert "1 written, 0 already there, 1 failed (truncated or corrupt image: 1)" in (
        capsys.readouterr().out
    )
    again = PrepareRun(str(out), {"seed": 1, "crf": True})
    assert not again.needs(target) and again.finish() == 0
    with pytest.raises(ManifestMismatch, match=r"seed: 1 -> 2.*--overwrite"):
        PrepareRun(str(out), {"seed": 2, "crf": True})
    over = PrepareRun(str(out), {"seed": 2, "crf": True}, overwrite=True)
    assert over.needs(target)
    assert json.load(open(out / "manifest.json"))["params"] == {"seed": 2, "crf": True}


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "f.bin"
    with pytest.raises(TypeError):
        atomic_write_bytes(str(target), object())
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_validation_and_prepare_import_without_detectron2():
    code = (
        "import sys, d2common.data.validation, d2common.prepare; "
        "bad = [m for m in ('torch', 'detectron2') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
