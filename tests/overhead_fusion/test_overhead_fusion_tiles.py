"""Tile cache: the same arrays and errors as reading each tile from its decoded source, one decode
per source image, a bounded size."""

import random

import cv2
import numpy as np
import pytest

from d2common.data.validation import BadSampleError
from d2common.testing import shared_data
from overhead_fusion.data import TileCache, load_tiled_dataset, read_tile


@pytest.fixture(scope="module")
def road_records():
    roads = shared_data("aerial_roads")
    records = load_tiled_dataset(
        str(roads / "images"), str(roads / "masks"), "mass_roads", grid=5, full_decode=False
    )
    return [
        r for r in records if r["file_name"] in {records[0]["file_name"], records[-1]["file_name"]}
    ]


def test_cache_gives_the_tiles_of_read_tile_with_one_decode_per_source(road_records):
    cache = TileCache(64 * 2**20)
    order = list(road_records)
    random.Random(0).shuffle(order)
    for k, record in enumerate(order):
        image, labels = cache.get(record, 64, nodata_color=(255, 255, 255))
        if k % 6 == 0:  # each read_tile decodes a whole 1500 px source
            ref_image, ref_labels = read_tile(record, 64, nodata_color=(255, 255, 255))
            np.testing.assert_array_equal(image, ref_image)
            np.testing.assert_array_equal(labels, ref_labels)
        image[:] = 0  # a copy: the cached tile stays intact
    assert len(order) == 50 and cache.decodes == 2 and cache.hits == 48
    again, _ = cache.get(order[0], 64, nodata_color=(255, 255, 255))
    np.testing.assert_array_equal(again, read_tile(order[0], 64, nodata_color=(255, 255, 255))[0])


def test_cache_is_bounded(road_records):
    tile_bytes = 32 * 32 * 3 + 32 * 32
    cache = TileCache(10 * tile_bytes)
    first, second = road_records[0], road_records[-1]
    for record in (first, second, first):
        cache.get(record, 32)
        assert cache._bytes <= 10 * tile_bytes and len(cache._tiles) == 10
    assert cache.decodes == 3
    disabled = TileCache(0)
    disabled.get(first, 32)
    assert disabled.decodes == 0 and not disabled._tiles


def test_cache_keeps_the_error_of_a_bad_tile(tmp_path):
    image = np.full((64, 64, 3), 90, np.uint8)
    label = np.zeros((64, 64, 3), np.uint8)
    label[:32, :32] = (255, 0, 255)  # colours of no table entry: tile (0, 0) is rejected
    cv2.imwrite(str(tmp_path / "a.png"), image)
    cv2.imwrite(str(tmp_path / "a_label.png"), label)
    record = {
        "file_name": str(tmp_path / "a.png"),
        "sem_seg_file_name": str(tmp_path / "a_label.png"),
    }
    record["label_format"] = "mass_roads"
    cache = TileCache(2**20)
    for _ in range(2):
        with pytest.raises(BadSampleError, match="a_label.png"):
            cache.get(dict(record, tile=[0, 0, 2, 0]), 16)
    _, labels = cache.get(dict(record, tile=[1, 1, 2, 0]), 16)
    assert (labels == 0).all() and cache.decodes == 1
