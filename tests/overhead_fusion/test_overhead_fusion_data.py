"""Loaders (City-OSM layout, generic colour tables, real Massachusetts Roads tiles), toy data,
tiling with nearest-neighbour labels, and the mapper's artifact views."""

import logging
import os

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog

from d2common.testing import shared_data
from overhead_fusion.data import (
    LABEL_FORMATS,
    OverheadFusionDatasetMapper,
    decode_color_label,
    encode_color_label,
    load_city_osm,
    load_tiled_dataset,
    pair_files,
    read_tile,
    tile_box,
)
from overhead_fusion.data.toy import TOY_GRID, TOY_SPLITS

CITY = LABEL_FORMATS["city_osm"]


def _write(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def test_decode_color_label_city_osm():
    label = np.array([[[255, 255, 255], [255, 0, 0]], [[0, 0, 255], [12, 200, 3]]], dtype=np.uint8)
    ids = decode_color_label(label, CITY)
    assert ids.tolist() == [[0, 1], [2, 255]]  # unknown colour -> ignore, never background
    np.testing.assert_array_equal(encode_color_label(ids, CITY)[:, :, :][0], label[0])
    np.testing.assert_array_equal(decode_color_label(encode_color_label(ids, CITY), CITY), ids)


def test_tile_box_paper_tiling():
    # 2208 px crop of a 2500 x 2400 image, 4 x 4 tiles of 552 px.
    assert tile_box(2500, 2400, [0, 0, 4, 2208]) == (0, 0, 552, 552)
    assert tile_box(2500, 2400, [3, 1, 4, 2208]) == (552, 1656, 1104, 2208)
    assert tile_box(300, 200, [1, 1, 2, 0]) == (100, 100, 200, 200)


def test_city_osm_layout_and_unpaired_files(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for name in ("berlin1", "berlin2"):
        _write(tmp_path / f"{name}_image.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        _write(tmp_path / f"{name}_labels.png", np.full((64, 64, 3), 255, np.uint8))
    _write(tmp_path / "berlin3_image.png", np.zeros((64, 64, 3), np.uint8))  # no labels
    open(tmp_path / "berlin4_image.png", "w").close()
    open(tmp_path / "berlin4_labels.png", "w").close()
    with caplog.at_level(logging.WARNING):
        dicts = load_city_osm(str(tmp_path), crop=64, grid=2)
    assert len(dicts) == 2 * 4
    # Every tile of an excluded image is a record left out, with the file and the reason.
    assert dicts.load_report.excluded == 4 * [
        (str(tmp_path / "berlin3_image.png"), "unpaired: no label image")
    ] + 4 * [(str(tmp_path / "berlin4_image.png"), "empty file")]
    assert "loaded 8 of 16 records; 8 excluded" in caplog.text
    assert dicts[0]["image_id"] == "berlin1_0_0" and dicts[0]["tile"] == [0, 0, 2, 64]
    with pytest.raises(FileNotFoundError, match="no image / label pairs"):
        pair_files(str(tmp_path), str(tmp_path), "_rgb", "_gt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_city_osm(str(tmp_path / "missing"))


def test_labels_are_resized_with_nearest_neighbour(tmp_path):
    # Building (1) beside background (0): bilinear resizing would create class 2 (road) at edges.
    labels = np.zeros((90, 90), np.uint8)
    labels[:, 45:] = 1
    labels[30:33] = 2
    _write(tmp_path / "a_image.png", np.zeros((90, 90, 3), np.uint8))
    _write(tmp_path / "a_labels.png", encode_color_label(labels, CITY))
    record = load_city_osm(str(tmp_path), crop=90, grid=1)[0]
    _, ids = read_tile(record, 64)
    assert ids.shape == (64, 64)
    assert set(np.unique(ids)) == {0, 1, 2}
    expected = cv2.resize(labels, (64, 64), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(ids, expected)


def test_toy_dataset_is_deterministic_city_osm_format(toy_root, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(toy_root))
    train = DatasetCatalog.get("overhead_fusion_toy_train")
    val = DatasetCatalog.get("overhead_fusion_toy_val")
    assert len(train) == TOY_SPLITS["train"] * TOY_GRID**2
    assert len(val) == TOY_SPLITS["val"] * TOY_GRID**2
    label = cv2.imread(train[0]["sem_seg_file_name"])[:, :, ::-1].reshape(-1, 3)
    colors = {tuple(c) for c in np.unique(label, axis=0)}
    assert colors <= {(255, 255, 255), (255, 0, 0), (0, 0, 255)} and len(colors) == 3
    from d2common.data import seeded_rng
    from overhead_fusion.data.toy import render_toy_tile

    image, ids = render_toy_tile(seeded_rng(0, "train", 0))
    np.testing.assert_array_equal(cv2.imread(train[0]["file_name"])[:, :, ::-1], image)
    meta = MetadataCatalog.get("overhead_fusion_toy_train")
    assert meta.stuff_classes == ["background", "building", "road"]


def test_mapper_views_and_reproducible_evaluation(tiny_cfg):
    cfg = tiny_cfg(opts=["INPUT.OVERHEAD_FUSION.NUM_VIEWS", "(2, 5)"])
    record = DatasetCatalog.get("overhead_fusion_toy_val")[0]
    test_mapper = OverheadFusionDatasetMapper(cfg, is_train=False)
    a, b = test_mapper(record), test_mapper(record)
    assert a["views"].shape == (5, 3, 32, 32) and a["sem_seg"].shape == (32, 32)
    assert a["artifact_kinds"].tolist() == [1, 2, 1, 2, 1]
    torch.testing.assert_close(a["views"], b["views"])
    test_mapper.repeat = 1
    assert (test_mapper(record)["views"] - a["views"]).abs().max() > 0.1
    # Every view differs from the clean image where its artifact lies.
    assert ((a["views"] - a["image"]).abs().amax(dim=(1, 2, 3)) > 0.2).all()

    train_mapper = OverheadFusionDatasetMapper(cfg, is_train=True)
    counts = {train_mapper(record)["views"].shape[0] for _ in range(12)}
    assert counts <= {2, 3, 4, 5} and len(counts) > 1


def test_mapper_cloud_photo_folder(tiny_cfg, tmp_path):
    for split in ("train", "test"):
        _write(tmp_path / "clouds" / split / "c.png", np.full((50, 70, 3), 250, np.uint8))
    cfg = tiny_cfg(opts=["INPUT.OVERHEAD_FUSION.CLOUD_TEXTURE_DIR", str(tmp_path / "clouds")])
    mapper = OverheadFusionDatasetMapper(cfg, is_train=False)
    assert mapper.cloud_textures.shape == (1, 3, 32, 32)
    out = mapper(DatasetCatalog.get("overhead_fusion_toy_val")[0])
    assert out["views"][0].max() > 0.95


def test_mapper_skips_corrupt_files(tiny_cfg, tmp_path, caplog):
    bad = tmp_path / "x_image.png"
    bad.write_bytes(b"not a png")
    mapper = OverheadFusionDatasetMapper(tiny_cfg(), is_train=True)
    record = {"file_name": str(bad), "sem_seg_file_name": str(bad), "image_id": "x"}
    with caplog.at_level(logging.WARNING):
        assert mapper(record) is None
    assert "x_image.png" in caplog.text


def test_real_massachusetts_road_tiles():
    root = shared_data("aerial_roads")
    dicts = load_tiled_dataset(
        str(root / "images"), str(root / "masks"), "mass_roads", crop=1500, grid=5
    )
    assert len(dicts) == 8 * 25
    for record in dicts[:25:12]:
        image, ids = read_tile(record, 60)
        assert image.shape == (60, 60, 3) and image.dtype == np.uint8
        assert set(np.unique(ids)) <= {0, 1}
    whole = load_tiled_dataset(
        str(root / "images"), str(root / "masks"), "mass_roads", full_decode=False
    )[0]
    _, ids = read_tile(whole, 300)
    # 10078735_15: about 3% road pixels, as in the full-size mask.
    assert 0.015 < ids.mean() < 0.05
