"""Bad input through the ICMDepth data pipeline (loaders, mapper, evaluator, start-up checks).

Each fault is planted in a small dataset written here (Cityscapes-DVPS layout; KITTI's Eigen
split where the fault can only occur there); the pipeline runs as the trainer runs it
(``get_detection_dataset_dicts``, then the mapper on every record) in training and in test mode.
"""

import os
import uuid

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog, get_detection_dataset_dicts

from d2common.checks import ConfigDataMismatch
from d2common.data import get_load_report, register_dataset_once
from d2common.data.validation import BadSampleError
from d2common.testing import plugin_cfg
from icm_depth.data.checks import check_icm_depth_dataset
from icm_depth.data.loaders import load_cityscapes_dvps, load_kitti_eigen, load_semkitti_dvps
from icm_depth.data.mapper import ICMDepthDatasetMapper
from icm_depth.engine import ICMDepthTrainer
from icm_depth.evaluation import ICMDepthEvaluator

CONFIG = "configs/ICMDepth/demo.yaml"
SIZE = (36, 48)
PREFIX = "000000_{:06d}_toycity_000000_{:06d}"


def _png(path, array):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return str(path)


def _scene(k, size=SIZE):
    """Image, depth (metres * 256, top rows invalid) and panoptic map of scene ``k``."""
    h, w = size
    image = np.full((h, w, 3), (40 + 30 * k) % 256, np.uint8)  # NumPy 2 refuses to wrap
    image[h // 2 :, :, 1] = 120
    depth = np.tile(np.linspace(5, 40, w, dtype=np.float32), (h, 1))
    depth[:4] = 0
    panoptic = np.full((h, w), 2, np.uint16)  # building
    panoptic[10:20, 5 + k : 20 + k] = 13000 + k + 1  # a car
    return image, np.round(depth * 256).astype(np.uint16), panoptic


def write_dvps(split_dir, num=4, size=SIZE):
    """``num`` Cityscapes-DVPS triplets; returns their path prefixes."""
    prefixes = []
    for k in range(num):
        prefix = os.path.join(str(split_dir), PREFIX.format(k, k))
        image, depth, panoptic = _scene(k, size)
        _png(prefix + "_leftImg8bit.png", image)
        _png(prefix + "_depth.png", depth)
        _png(prefix + "_gtFine_instanceTrainIds.png", panoptic)
        prefixes.append(prefix)
    return prefixes


def register(loader, family="cityscapes_dvps") -> str:
    """Registers ``loader`` under a fresh name (the catalogs are process-wide)."""
    name = f"icmbad_{uuid.uuid4().hex[:8]}"
    register_dataset_once(
        name,
        loader,
        evaluator_type="icm_depth",
        dataset_family=family,
        eval_crop="garg" if family == "kitti" else "none",
        max_depth=80.0,
        min_depth=1e-3,
    )
    return name


# Each fault plants one problem on sample 1 (Cityscapes-DVPS prefixes ``p``) and returns the
# file the pipeline must name.
def _missing(p):
    os.remove(p[1] + "_depth.png")
    return p[1] + "_depth.png"


def _truncated(p):
    path = p[1] + "_leftImg8bit.png"
    data = open(path, "rb").read()
    with open(path, "wb") as f:  # the header (size) survives, the pixel data does not
        f.write(data[: len(data) // 2])
    return path


def _corrupt(p):
    path = p[1] + "_depth.png"
    data = open(path, "rb").read()
    with open(path, "wb") as f:  # the PNG signature and IHDR (33 bytes), then garbage chunks
        f.write(data[:33] + np.random.default_rng(0).bytes(len(data) - 33))
    return path


def _unpaired(p):
    # Depth and panoptic of a frame whose image is missing.
    orphan = os.path.join(os.path.dirname(p[0]), PREFIX.format(9, 9))
    _, depth, panoptic = _scene(9)
    _png(orphan + "_gtFine_instanceTrainIds.png", panoptic)
    return _png(orphan + "_depth.png", depth)


def _size_mismatch(p):
    _, depth, _ = _scene(1, (SIZE[0], SIZE[1] - 8))
    return _png(p[1] + "_depth.png", depth)


def _unknown_label(p):
    _, _, panoptic = _scene(1)
    panoptic[30:, :] = 40  # no Cityscapes train id
    return _png(p[1] + "_gtFine_instanceTrainIds.png", panoptic)


def _empty_annotation(p):
    return _png(p[1] + "_depth.png", np.zeros(SIZE, np.uint16))


def _tiny(p):
    image, depth, panoptic = _scene(1, (8, 8))
    _png(p[1] + "_depth.png", depth)
    _png(p[1] + "_gtFine_instanceTrainIds.png", panoptic)
    return _png(p[1] + "_leftImg8bit.png", image)


# fault -> (planting function, expected outcome, reason kind). Outcomes:
#   "excluded": dropped at load in both modes, with the file and reason in the load report;
#   "reported": the four intact samples load, and the stray file is in the load report;
#   "skip_or_raise": reaches the mapper; training skips and counts it, testing raises naming it;
#   "train_skip": training skips it (nothing to learn), testing scores it (see below).
FAULTS = {
    "missing file": (_missing, "excluded", "file not found"),
    "truncated file": (_truncated, "skip_or_raise", "truncated or corrupt image"),
    "corrupt file": (_corrupt, "excluded", "not a readable image"),
    "unpaired file": (_unpaired, "reported", "unpaired"),
    "size mismatch": (_size_mismatch, "excluded", "size mismatch"),
    "unknown label value": (_unknown_label, "skip_or_raise", "16.7% of the pixels have a value"),
    "empty annotation": (_empty_annotation, "train_skip", "no valid depth pixel"),
    "tiny image": (_tiny, "excluded", "image of size 8x8 is too small (needs 32x32)"),
}
# "duplicate name" cannot occur in the Cityscapes-DVPS layout (one folder, the file system keeps
# names unique): it is tested on KITTI's split file and SemKITTI-DVPS's focal lengths below.


def _mapper(is_train):
    return ICMDepthDatasetMapper(plugin_cfg(CONFIG), is_train)


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_bad_input_matrix(tmp_path, fault, mode):
    plant, outcome, reason = FAULTS[fault]
    prefixes = write_dvps(tmp_path)
    bad_path = plant(prefixes)
    name = register(lambda: load_cityscapes_dvps(str(tmp_path)))
    is_train = mode == "train"
    dicts = get_detection_dataset_dicts([name], filter_empty=is_train)
    report = get_load_report(name)
    files = [d["file_name"] for d in dicts]
    images = [p + "_leftImg8bit.png" for p in prefixes]
    mapper = _mapper(is_train)

    if outcome in ("excluded", "reported"):
        expected = [f for f in images if f != images[1]] if outcome == "excluded" else images
        assert files == expected and report.num_loaded == len(dicts)
        assert report.excluded == [(bad_path, report.excluded[0][1])]
        assert report.excluded[0][1].startswith(reason)
        assert all(mapper(d) is not None for d in dicts)
        return
    assert files == images and report.excluded == []
    if outcome == "train_skip" and not is_train:
        outputs = [mapper(d) for d in dicts]
        assert all(o is not None for o in outputs) and not outputs[1]["depth"].any()
    elif is_train:
        outputs = [mapper(d) for d in dicts]
        assert [o is None for o in outputs] == [False, True, False, False]
        assert mapper.num_skipped == 1
        (kind,) = mapper.skipper.reasons
        assert kind.startswith(reason)
    else:
        with pytest.raises(BadSampleError, match=reason) as info:
            for d in dicts:
                mapper(d)
        assert info.value.path == bad_path and "cannot skip or replace" in str(info.value)


def test_sixteen_bit_maps_stay_sixteen_bit_and_a_truncated_depth_is_refused(tmp_path):
    prefixes = write_dvps(tmp_path, num=2)
    (record, other) = load_cityscapes_dvps(str(tmp_path))
    out = _mapper(False)(record)
    expected = cv2.imread(prefixes[0] + "_depth.png", cv2.IMREAD_UNCHANGED) / 256.0
    assert torch.equal(out["depth"], torch.as_tensor(expected, dtype=torch.float32))
    assert expected.max() * 256 > 255  # codes beyond 8 bits, read back exactly
    data = open(prefixes[1] + "_depth.png", "rb").read()
    with open(prefixes[1] + "_depth.png", "wb") as f:
        f.write(data[: len(data) * 3 // 4])
    with pytest.raises(BadSampleError, match="_depth.png: truncated or corrupt"):
        _mapper(False)(other)


def test_empty_depth_and_no_instances_in_evaluation(tmp_path):
    """Degenerate GT in test mode is scored with documented values: an image without a valid
    depth pixel adds no pixel to the pooled metrics and is left out of the per-image averages;
    an image without instances adds no pixel to delta1_instance."""
    prefixes = write_dvps(tmp_path, num=3)
    _empty_annotation(prefixes)
    _, _, panoptic = _scene(2)
    _png(prefixes[2] + "_gtFine_instanceTrainIds.png", np.where(panoptic >= 1000, 2, panoptic))
    name = register(lambda: load_cityscapes_dvps(str(tmp_path)))
    records = DatasetCatalog.get(name)
    mapper = _mapper(False)
    evaluator = ICMDepthEvaluator(plugin_cfg(CONFIG), name, str(tmp_path / "eval"))
    evaluator.reset()
    for record in records:
        sample = mapper(record)
        assert sample["instance_ids"].max() == (0 if record is records[2] else 1)
        evaluator.process([sample], [{"depth": sample["depth"] * 1.1}])
    results = evaluator.evaluate()
    assert results["depth"]["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert results["depth"]["delta1_instance"] == pytest.approx(1.0)
    assert dict(results["records"]) == {"evaluated": 3.0, "candidates": 3.0, "excluded": 0.0}


def test_evaluation_reports_the_excluded_records(tmp_path):
    prefixes = write_dvps(tmp_path, num=4)
    _missing(prefixes)
    name = register(lambda: load_cityscapes_dvps(str(tmp_path)))
    records = DatasetCatalog.get(name)
    mapper = _mapper(False)
    evaluator = ICMDepthEvaluator(plugin_cfg(CONFIG), name, str(tmp_path / "eval"))
    evaluator.reset()
    for record in records:
        sample = mapper(record)
        evaluator.process([sample], [{"depth": sample["depth"]}])
    results = evaluator.evaluate()
    assert results["depth"]["abs_rel"] == pytest.approx(0.0, abs=1e-7)
    assert dict(results["records"]) == {"evaluated": 3.0, "candidates": 4.0, "excluded": 1.0}
    from d2common.evaluation_coverage import EvaluationCoverageError

    evaluator.reset()
    for record in records + records[:1]:  # a substituted sample
        sample = mapper(record)
        evaluator.process([sample], [{"depth": sample["depth"]}])
    with pytest.raises(EvaluationCoverageError, match="more than once"):
        evaluator.evaluate()


def _kitti(root, lines):
    """A KITTI tree with one image / depth pair per ``(image rel, depth rel)`` and a split."""
    for k, (img_rel, gt_rel) in enumerate(dict(lines).items()):
        image, depth, _ = _scene(k)
        _png(root / "raw" / img_rel, image)
        _png(root / "depth" / "train" / gt_rel, depth)
    split = root / "split.txt"
    split.write_text("".join(f"{i} {g} 721.5377\n" for i, g in lines))
    return split


def _kitti_lines(n):
    return [
        (
            f"2011_09_26/2011_09_26_drive_0001_sync/image_02/data/{k:010d}.png",
            f"2011_09_26_drive_0001_sync/proj_depth/groundtruth/image_02/{k:010d}.png",
        )
        for k in range(n)
    ]


@pytest.mark.parametrize("mode", ["train", "test"])
def test_duplicate_name_in_a_kitti_split(tmp_path, mode):
    lines = _kitti_lines(3)
    split = _kitti(tmp_path, lines + [lines[1]])
    name = register(lambda: load_kitti_eigen(str(tmp_path), str(split)), family="kitti")
    dicts = get_detection_dataset_dicts([name], filter_empty=mode == "train")
    assert [d["image_id"] for d in dicts] == [i for i, _ in lines]
    ((path, reason),) = get_load_report(name).excluded
    assert path == str(tmp_path / "raw" / lines[1][0])
    assert reason == "duplicate image id (line 4 repeats line 2)"
    assert all(_mapper(mode == "train")(d) is not None for d in dicts)


def test_two_depth_files_for_one_semkitti_frame_are_ambiguous(tmp_path):
    for k in range(2):
        prefix = str(tmp_path / f"000000_{k:06d}")
        image, depth, _ = _scene(k)
        _png(prefix + "_leftImg8bit.png", image)
        _png(prefix + "_depth_718.856.png", depth)
        _png(prefix + "_gtFine_class.png", np.full(SIZE, 13, np.uint8))
        _png(prefix + "_gtFine_instance.png", np.ones(SIZE, np.uint16))
    _png(str(tmp_path / "000000_000001_depth_721.5.png"), _scene(1)[1])
    records = load_semkitti_dvps(str(tmp_path))
    assert [r["image_id"] for r in records] == ["000000_000000"]
    ((path, reason),) = records.load_report.excluded
    assert path.endswith("000000_000001_depth_721.5.png") and reason.startswith("ambiguous")


def _cfg(train, test, *opts):
    return plugin_cfg(
        CONFIG,
        ["DATASETS.TRAIN", f"('{train}',)", "DATASETS.TEST", f"('{test}',)", *opts],
    )


def test_start_up_checks_name_the_key_to_set(tmp_path):
    lines = _kitti_lines(2)
    split = _kitti(tmp_path / "kitti", lines)
    kitti = register(
        lambda: load_kitti_eigen(str(tmp_path / "kitti"), str(split), str(tmp_path / "none")),
        family="kitti",
    )
    write_dvps(tmp_path / "dvps", num=2)
    dvps = register(lambda: load_cityscapes_dvps(str(tmp_path / "dvps")))

    # KITTI without pseudo masks: the ICM loss would silently be 0.
    with pytest.raises(ConfigDataMismatch, match="set MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT 0"):
        ICMDepthTrainer.build_train_loader(_cfg(kitti, dvps))
    no_icm = _cfg(kitti, dvps, "MODEL.ICM_DEPTH.LOSS.ICM_WEIGHT", "0.0")
    assert ICMDepthTrainer.build_train_loader(no_icm) is not None
    assert ICMDepthTrainer.build_train_loader(_cfg(dvps, dvps)) is not None

    # KITTI's Garg crop on Cityscapes-DVPS frames (the --eval-only path).
    garg = _cfg(dvps, dvps, "TEST.ICM_DEPTH.CROP", "garg")
    with pytest.raises(ConfigDataMismatch, match="set TEST.ICM_DEPTH.CROP auto"):
        ICMDepthTrainer.build_test_loader(garg, dvps)
    assert ICMDepthTrainer.build_test_loader(garg, kitti) is not None

    # A dataset without depth maps.
    other = f"icmbad_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(other, lambda: [{"file_name": "x.png", "image_id": 1}])
    MetadataCatalog.get(other).set(evaluator_type="coco")
    with pytest.raises(ConfigDataMismatch, match="set DATASETS.TRAIN / DATASETS.TEST"):
        check_icm_depth_dataset(_cfg(dvps, dvps), other)
    # Not an ICMDepth config: nothing to check.
    assert check_icm_depth_dataset(plugin_cfg(None), other) is None
