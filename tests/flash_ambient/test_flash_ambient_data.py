"""FAID loading (real samples and written fixtures), the mapper and the toy dataset."""

import logging
import os

import cv2
import numpy as np
import pytest

from d2common.testing import shared_data
from flash_ambient.data import (
    FlashAmbientDatasetMapper,
    generate_toy_faid,
    load_faid_pairs,
    pair_name,
    read_split_file,
)


def _write(path, h, w, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_loader_reads_real_faid_samples():
    root = shared_data("faid_samples")
    dicts = load_faid_pairs(str(root))
    assert [d["image_id"] for d in dicts] == ["Objects_148", "People_014", "People_150"]
    for d in dicts:
        assert d["file_name"].endswith(f"{d['image_id']}_flash.png")
        assert d["ambient_file_name"].endswith(f"{d['image_id']}_ambient.png")
        assert {d["width"], d["height"]} == {320, 240}
    assert {d["category"] for d in dicts} == {"Objects", "People"}


def test_split_file_selects_pairs_and_reports_missing(tmp_path, caplog):
    root = shared_data("faid_samples")
    split = tmp_path / "test.txt"
    split.write_text("# paper test list\nPeople_150_flash.png\n\nObjects_148\nRooms_999\n")
    assert read_split_file(str(split)) == ["People_150", "Objects_148", "Rooms_999"]
    with caplog.at_level(logging.WARNING):
        dicts = load_faid_pairs(str(root), str(split))
    assert [d["image_id"] for d in dicts] == ["People_150", "Objects_148"]
    assert dicts.load_report.excluded == [
        (f"{split}: Rooms_999", f"listed in the split but not found under {root}")
    ]
    assert "loaded 2 of 3 records; 1 excluded" in caplog.text
    with pytest.raises(FileNotFoundError, match="nosuch.txt"):
        load_faid_pairs(str(root), str(tmp_path / "nosuch.txt"))


def test_unpaired_and_unreadable_files_are_skipped_with_counts(tmp_path, caplog):
    images = tmp_path / "images"
    _write(images / "People" / "People_001_flash.png", 24, 32)
    _write(images / "People" / "People_001_ambient.png", 24, 32)
    _write(images / "Toys" / "Toys_002_flash.png", 32, 24)  # no ambient
    _write(images / "Rooms_003_ambient.png", 24, 32)  # no flash
    (images / "Shelves_004_flash.png").write_bytes(b"not a png")
    _write(images / "Shelves_004_ambient.png", 24, 32)
    (images / "notes.txt").write_text("ignored")
    with caplog.at_level(logging.WARNING):
        dicts = load_faid_pairs(str(images))
    assert [d["image_id"] for d in dicts] == ["People_001"]
    excluded = dict(dicts.load_report.excluded)
    assert excluded.pop(str(images / "Rooms_003_ambient.png")) == "unpaired: no flash image"
    toys = str(images / "Toys" / "Toys_002_flash.png")
    assert excluded.pop(toys) == "unpaired: no ambient image"
    assert excluded.pop(str(images / "Shelves_004_flash.png")).startswith("not a readable image")
    assert not excluded
    assert "loaded 1 of 4 records; 3 excluded" in caplog.text
    assert pair_name("x/Shelves_004_ambient.png") == "Shelves_004"
    with pytest.raises(FileNotFoundError, match="FAID image folder"):
        load_faid_pairs(str(tmp_path / "missing"))


def _mapper(is_train, **kw):
    args = dict(resize=(32, 24), crop_base=24, crop_scale=(0.8, 1.0), crop_size=16)
    args.update(kw)
    return FlashAmbientDatasetMapper(is_train, **args)


def test_mapper_resizes_by_orientation_and_augments_pairs_identically(tmp_path):
    _write(tmp_path / "A_1_flash.png", 60, 80, seed=1)  # landscape
    flash = cv2.imread(str(tmp_path / "A_1_flash.png"))
    cv2.imwrite(str(tmp_path / "A_1_ambient.png"), 255 - flash)
    _write(tmp_path / "B_2_flash.png", 80, 60, seed=2)  # portrait
    _write(tmp_path / "B_2_ambient.png", 80, 60, seed=3)
    dicts = {d["image_id"]: d for d in load_faid_pairs(str(tmp_path))}

    test = _mapper(False)(dicts["B_2"])
    assert test["image"].shape == test["ambient"].shape == (3, 32, 24)
    assert (test["height"], test["width"]) == (32, 24)
    assert _mapper(False)(dicts["A_1"])["image"].shape == (3, 24, 32)

    np.random.seed(0)
    train = _mapper(True)
    flips = 0
    for _ in range(8):
        out = train(dicts["A_1"])
        assert out["image"].shape == out["ambient"].shape == (3, 16, 16)
        # The ambient image is the negative of the flash: same crop, same flip.
        diff = (255 - out["image"].int() - out["ambient"].int()).abs()
        assert diff.max() <= 1
        flips += int(out["image"][:, 0, 0].tolist() != out["image"][:, 0, -1].tolist())
    assert flips > 0


def test_mapper_skips_corrupt_images(tmp_path, caplog):
    _write(tmp_path / "A_1_ambient.png", 24, 32)
    (tmp_path / "A_1_flash.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    record = {
        "file_name": str(tmp_path / "A_1_flash.png"),
        "ambient_file_name": str(tmp_path / "A_1_ambient.png"),
        "image_id": "A_1",
    }
    mapper = _mapper(True)
    with caplog.at_level(logging.WARNING):
        assert mapper(record) is None
    assert mapper.num_skipped == 1 and "Skipping flash / ambient pair" in caplog.text
    assert str(tmp_path / "A_1_flash.png") in caplog.text


def test_toy_dataset_is_deterministic_and_in_faid_format(tmp_path):
    splits = {"train": 2, "val": 1}
    generate_toy_faid(str(tmp_path / "a"), seed=7, splits=splits, size=(40, 30))
    generate_toy_faid(str(tmp_path / "b"), seed=7, splits=splits, size=(40, 30))
    names = sorted(os.listdir(tmp_path / "a" / "images"))
    assert len(names) == 6
    for name in names:
        a = (tmp_path / "a" / "images" / name).read_bytes()
        assert a == (tmp_path / "b" / "images" / name).read_bytes()
    dicts = load_faid_pairs(
        str(tmp_path / "a" / "images"), str(tmp_path / "a" / "splits" / "val.txt")
    )
    assert len(dicts) == 1
    flash = cv2.imread(dicts[0]["file_name"]).astype(float)
    ambient = cv2.imread(dicts[0]["ambient_file_name"]).astype(float)
    assert flash.shape[:2] in ((30, 40), (40, 30))
    assert np.abs(flash - ambient).mean() > 5  # two different illuminations


def test_registered_toy_splits_load():
    from detectron2.data import DatasetCatalog, MetadataCatalog

    val = DatasetCatalog.get("flash_ambient_toy_val")
    train = DatasetCatalog.get("flash_ambient_toy_train")
    assert len(val) == 16 and len(train) == 64
    assert not {d["image_id"] for d in val} & {d["image_id"] for d in train}
    assert MetadataCatalog.get("flash_ambient_toy_val").evaluator_type == "flash_ambient"
