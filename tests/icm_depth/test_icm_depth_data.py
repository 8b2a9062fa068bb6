"""ICMDepth data: file formats, loaders (real layouts, fixtures), toy generation, the mapper."""

import logging
import os

import cv2
import numpy as np
import pytest
import torch

from d2common.data.validation import BadSampleError
from d2common.testing import plugin_cfg, shared_data
from icm_depth.data.formats import (
    CorruptFileError,
    focal_from_depth_name,
    read_cityscapes_dvps_instances,
    read_depth_png,
    read_instance_png,
    read_semkitti_dvps_instances,
)
from icm_depth.data.loaders import load_cityscapes_dvps, load_kitti_eigen, load_semkitti_dvps
from icm_depth.data.mapper import ICMDepthDatasetMapper
from icm_depth.data.toy import write_toy_dataset


def _write(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return str(path)


H, W = 32, 40  # the smallest image the loaders accept (MIN_IMAGE_SIZE)


def _rgb(h=H, w=W, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_depth_png_is_uint16_over_256(tmp_path):
    raw = np.array([[0, 256, 65535]], np.uint16)
    depth = read_depth_png(_write(tmp_path / "d.png", raw))
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, [[0.0, 1.0, 65535 / 256]])
    with pytest.raises(CorruptFileError, match="rgb.png.*uint16"):
        read_depth_png(_write(tmp_path / "rgb.png", _rgb()))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(BadSampleError, match="broken.png: not a readable image"):
        read_depth_png(str(tmp_path / "broken.png"))
    with pytest.raises(BadSampleError, match="missing.png: file not found"):
        read_depth_png(str(tmp_path / "missing.png"))


def test_cityscapes_dvps_panoptic_to_instances(tmp_path):
    pan = np.array([[0, 10, 13001, 13001], [13002, 11000, 14005, 32]], np.uint16)
    ids = read_cityscapes_dvps_instances(_write(tmp_path / "p.png", pan))
    # stuff (0, 10), void (32) and a thing without instance (11000) are background.
    assert ids.tolist() == [[0, 0, 1, 1], [2, 0, 3, 0]]
    pan[1, 2] = 26005  # class 26 is no train id
    with pytest.raises(BadSampleError, match="12.5% of the pixels have a value outside"):
        read_cityscapes_dvps_instances(_write(tmp_path / "unknown.png", pan))


def test_semkitti_dvps_class_and_instance_pairs(tmp_path):
    cls = np.array([[0, 0, 5, 5]], np.uint8)
    inst = np.array([[1, 0, 1, 2]], np.uint16)
    ids = read_semkitti_dvps_instances(
        _write(tmp_path / "c.png", cls), _write(tmp_path / "i.png", inst)
    )
    assert ids.tolist() == [[1, 0, 2, 3]]
    # Stuff classes (8 road, 13 fence, 255 ignore) are never instances, whatever their ids.
    cls = np.array([[0, 8, 13, 7, 255]], np.uint8)
    inst = np.array([[4, 4, 9, 9, 9]], np.uint16)
    ids = read_semkitti_dvps_instances(
        _write(tmp_path / "c2.png", cls), _write(tmp_path / "i2.png", inst)
    )
    assert ids.tolist() == [[1, 0, 0, 2, 0]]
    assert focal_from_depth_name("a/000000_000001_depth_718.8560180664062.png") == pytest.approx(
        718.856018
    )


def test_instance_png_relabels(tmp_path):
    ids = read_instance_png(_write(tmp_path / "m.png", np.array([[0, 7, 7, 3]], np.uint8)))
    assert ids.tolist() == [[0, 2, 2, 1]]


def _cityscapes_triplet(split_dir, prefix, h=H, w=W, seed=0):
    base = os.path.join(split_dir, prefix)
    _write(base + "_leftImg8bit.png", _rgb(h, w, seed))
    depth = np.full((h, w), 10 * 256, np.uint16)
    depth[0] = 0
    _write(base + "_depth.png", depth)
    pan = np.zeros((h, w), np.uint16)
    pan[2:4, 2:5] = 13001
    _write(base + "_gtFine_instanceTrainIds.png", pan)


def test_cityscapes_dvps_loader_excludes_unpaired(tmp_path):
    split = str(tmp_path / "video_sequence" / "val")
    _cityscapes_triplet(split, "000000_000000_munster_000105_000004")
    _write(os.path.join(split, "000000_000001_munster_000105_000005_leftImg8bit.png"), _rgb())
    records = load_cityscapes_dvps(split)
    assert len(records) == 1 and records[0]["instance_format"] == "cityscapes_dvps"
    assert (records[0]["height"], records[0]["width"]) == (H, W)
    (excluded,) = records.load_report.excluded
    assert excluded[0].endswith("000005_depth.png") and excluded[1] == "file not found"
    with pytest.raises(FileNotFoundError, match="datasets/README.md"):
        load_cityscapes_dvps(str(tmp_path / "nowhere"))


def test_semkitti_dvps_loader(tmp_path):
    split = str(tmp_path / "train")
    base = os.path.join(split, "000000_000000")
    _write(base + "_leftImg8bit.png", _rgb())
    _write(base + "_depth_718.856.png", np.zeros((H, W), np.uint16))
    _write(base + "_gtFine_class.png", np.zeros((H, W), np.uint8))
    _write(base + "_gtFine_instance.png", np.zeros((H, W), np.uint16))
    _write(os.path.join(split, "000000_000001_leftImg8bit.png"), _rgb())  # unpaired
    (rec,) = load_semkitti_dvps(split)
    assert rec["focal"] == pytest.approx(718.856) and rec["depth_file"].endswith("_718.856.png")


def test_kitti_eigen_loader(tmp_path):
    root = tmp_path / "kitti"
    img_rel = "2011_09_26/2011_09_26_drive_0001_sync/image_02/data/0000000005.png"
    gt_rel = "2011_09_26_drive_0001_sync/proj_depth/groundtruth/image_02/0000000005.png"
    _write(str(root / "raw" / img_rel), _rgb())
    _write(str(root / "depth" / "train" / gt_rel), np.ones((H, W), np.uint16) * 512)
    _write(str(root / "instances" / img_rel), np.zeros((H, W), np.uint8))
    split = root / "split.txt"
    split.write_text(
        f"{img_rel} {gt_rel} 721.5377\n"
        "2011_09_26/x/image_02/data/1.png None 721.5377\n"
        "2011_09_26/y/image_02/data/2.png y/proj_depth/groundtruth/image_02/2.png 721.5377\n"
    )
    records = load_kitti_eigen(str(root), str(split), str(root / "instances"))
    assert len(records) == 1
    assert records[0]["instance_format"] == "instance_png" and records[0]["focal"] == pytest.approx(
        721.5377
    )
    reasons = [r for _, r in records.load_report.excluded]
    assert reasons == ["no ground truth ('None' in the split file)", "file not found"]


def test_toy_dataset_is_deterministic_and_in_cityscapes_dvps_format(tmp_path):
    splits = {"train": 2, "val": 1}
    write_toy_dataset(str(tmp_path / "a"), size=(48, 96), splits=splits)
    write_toy_dataset(str(tmp_path / "b"), size=(48, 96), splits=splits)
    records = load_cityscapes_dvps(str(tmp_path / "a" / "video_sequence" / "train"))
    assert len(records) == 2
    for rec in records:
        other = rec["depth_file"].replace(str(tmp_path / "a"), str(tmp_path / "b"))
        assert open(rec["depth_file"], "rb").read() == open(other, "rb").read()
        depth = read_depth_png(rec["depth_file"])
        ids = read_cityscapes_dvps_instances(rec["instance_file"])
        assert depth.shape == ids.shape == (48, 96)
        assert ids.max() >= 1 and (depth[ids > 0] > 0).all()
        assert 0 < depth.max() <= 80 and (depth == 0).any()  # sky is invalid


def test_mapper_reads_crops_and_flips_consistently(tmp_path):
    split = str(tmp_path / "s")
    _cityscapes_triplet(split, "000000_000000_x", h=36, w=48)
    (rec,) = load_cityscapes_dvps(split)
    cfg = plugin_cfg(
        "configs/ICMDepth/demo.yaml",
        ["INPUT.ICM_DEPTH.CROP_SIZE", "[8, 10]", "INPUT.ICM_DEPTH.FLIP_PROB", "1.0"],
    )
    out = ICMDepthDatasetMapper(cfg, True)(rec)
    assert out["image"].shape == (3, 8, 10) and out["depth"].shape == out["instance_ids"].shape == (
        8,
        10,
    )
    assert out["instance_ids"].dtype == torch.long
    test_out = ICMDepthDatasetMapper(cfg, False)(rec)
    assert test_out["image"].shape == (3, 36, 48) and (test_out["height"], test_out["width"]) == (
        36,
        48,
    )
    assert test_out["instance_ids"].max() == 1 and float(test_out["depth"][5, 5]) == 10.0


def test_mapper_skips_corrupt_files_in_training_and_raises_in_test(tmp_path, caplog):
    split = str(tmp_path / "s")
    _cityscapes_triplet(split, "000000_000000_x")
    (rec,) = load_cityscapes_dvps(split)
    with open(rec["depth_file"], "wb") as f:
        f.write(b"garbage")
    cfg = plugin_cfg("configs/ICMDepth/demo.yaml")
    mapper = ICMDepthDatasetMapper(cfg, True)
    with caplog.at_level(logging.WARNING):
        assert mapper(rec) is None
    assert mapper.num_skipped == 1 and "_depth.png" in caplog.text
    with pytest.raises(BadSampleError, match="_depth.png: not a readable image"):
        ICMDepthDatasetMapper(cfg, False)(rec)


def test_loader_on_real_cityscapes_dvps_sample():
    split = shared_data("cityscapes_dvps/video_sequence/val")
    records = load_cityscapes_dvps(str(split))
    assert records
    depth = read_depth_png(records[0]["depth_file"])
    ids = read_cityscapes_dvps_instances(records[0]["instance_file"])
    assert depth.shape == ids.shape
