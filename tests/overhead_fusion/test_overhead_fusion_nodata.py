"""White no-data areas of the real Massachusetts Roads sample: ignore label in the mapper, tiles
dropped from the registered splits and the generic loader (INPUT.OVERHEAD_FUSION.NODATA)."""

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog

from d2common.data import get_load_report
from d2common.testing import shared_data
from overhead_fusion.data import (
    IGNORE_LABEL,
    OverheadFusionDatasetMapper,
    builtin,
    load_tiled_dataset,
    read_tile,
    tile_box,
)
from overhead_fusion.engine import resolve_dataset

ROAD_OPTS = ["MODEL.OVERHEAD_FUSION.NUM_CLASSES", "2", "MODEL.OVERHEAD_FUSION.CLASS_WEIGHTS"]
ROAD_OPTS += ["[0.5, 2.0]"]


@pytest.fixture(scope="module")
def roads():
    return shared_data("aerial_roads")


@pytest.fixture
def registered_split(roads, tmp_path):
    """The registered ``overhead_fusion_mass_roads_test`` split's layout and tiling, pointing at
    the sample through links (``mass_roads/test/{sat,map}``)."""
    image_dir, label_dir, fmt, isuf, lsuf, crop, grid = builtin._TILED_SPLITS[
        "overhead_fusion_mass_roads_test"
    ]
    (tmp_path / image_dir).parent.mkdir(parents=True)
    (tmp_path / image_dir).symlink_to(roads / "images")
    (tmp_path / label_dir).symlink_to(roads / "masks")
    name = f"overhead_fusion_mass_roads_test_{tmp_path.name}"
    builtin.register_tiled_dataset(
        name, str(tmp_path / image_dir), str(tmp_path / label_dir), fmt, isuf, lsuf, crop, grid
    )
    return name


def _white_fraction_per_tile(roads, grid):
    fractions = []
    for path in sorted((roads / "images").glob("*.png")):
        white = (cv2.imread(str(path)) == 255).all(axis=2)
        step = min(white.shape) // grid
        for r in range(grid):
            for c in range(grid):
                fractions.append(white[r * step : (r + 1) * step, c * step : (c + 1) * step].mean())
    return np.array(fractions)


def _partly_white_tile(records):
    """The first tile partly white whose mask draws roads in the white part, and its arrays."""
    for record in records:
        x0, y0, x1, y1 = tile_box(1500, 1500, record["tile"])
        image = cv2.imread(record["file_name"])[y0:y1, x0:x1]
        mask = cv2.imread(record["sem_seg_file_name"], cv2.IMREAD_GRAYSCALE)[y0:y1, x0:x1]
        white = (image == 255).all(axis=2)
        if 0.05 < white.mean() < 0.95 and (white & (mask == 255)).sum() > 100:
            return record, white, mask
    raise AssertionError("no partly white road tile in the sample")


def test_white_pixels_get_the_ignore_label(roads):
    records = load_tiled_dataset(str(roads / "images"), str(roads / "masks"), "mass_roads", grid=5)
    record, white, mask = _partly_white_tile(records)
    expected = np.where(white, IGNORE_LABEL, (mask == 255).astype(np.uint8))

    _, ignored = read_tile(record, 300, nodata_color=(255, 255, 255))
    np.testing.assert_array_equal(ignored, expected)
    _, kept = read_tile(record, 300)
    np.testing.assert_array_equal(kept, (mask == 255).astype(np.uint8))


def test_mapper_nodata_modes_on_the_registered_split(registered_split, tiny_cfg):
    record, _, _ = _partly_white_tile(DatasetCatalog.get(registered_split))
    outputs = {}
    for mode in ("ignore", "keep"):
        cfg = tiny_cfg(opts=ROAD_OPTS + ["INPUT.OVERHEAD_FUSION.NODATA", mode])
        outputs[mode] = OverheadFusionDatasetMapper(cfg, is_train=False)(record)["sem_seg"]
    assert (outputs["ignore"] == IGNORE_LABEL).float().mean() > 0.01
    assert (outputs["keep"] != IGNORE_LABEL).all()
    same = outputs["ignore"] != IGNORE_LABEL
    assert (outputs["ignore"][same] == outputs["keep"][same]).all()
    with pytest.raises(ValueError, match="NODATA"):
        OverheadFusionDatasetMapper(tiny_cfg(opts=["INPUT.OVERHEAD_FUSION.NODATA", "x"]), False)


def test_drop_leaves_out_no_data_tiles_of_the_registered_split(roads, registered_split, tiny_cfg):
    fractions = _white_fraction_per_tile(roads, 5)
    opts = ["INPUT.OVERHEAD_FUSION.NODATA", "drop", "INPUT.OVERHEAD_FUSION.NODATA_MAX_FRACTION"]
    cfg = tiny_cfg(opts=ROAD_OPTS + opts + ["0.01"])
    name = resolve_dataset(cfg, registered_split)
    assert name != registered_split
    records = DatasetCatalog.get(name)
    assert len(records) == int((fractions <= 0.01).sum()) < len(fractions)
    report = get_load_report(name)
    assert report.num_candidates == len(fractions)
    assert len(report.excluded) == int((fractions > 0.01).sum())
    assert all(reason.startswith("no-data tile") for _, reason in report.excluded)
    # "ignore" and "keep" evaluate the registered split itself
    keep = tiny_cfg(opts=ROAD_OPTS + ["INPUT.OVERHEAD_FUSION.NODATA", "keep"])
    assert resolve_dataset(keep, registered_split) == registered_split
