"""Datasets (registered at import), loaders, toy data and the dataset mapper."""

from . import builtin, checks  # noqa: F401  (registers the datasets and start-up checks)
from .builtin import nodata_dropped_dataset
from .label_formats import (
    IGNORE_LABEL,
    LABEL_FORMATS,
    LabelFormat,
    decode_color_label,
    encode_color_label,
    label_unknown_fraction,
)
from .loaders import (
    MIN_TILE_SIDE,
    drop_nodata_tiles,
    load_city_osm,
    load_tiled_dataset,
    nodata_mask,
    pair_files,
    scan_pairs,
)
from .mapper import OverheadFusionDatasetMapper, nodata_color, tile_box
from .stacks import load_image_stacks, read_stack
from .tiles import TileCache, cut_tile, decode_source, read_tile

__all__ = [
    "IGNORE_LABEL",
    "MIN_TILE_SIDE",
    "LABEL_FORMATS",
    "LabelFormat",
    "decode_color_label",
    "encode_color_label",
    "label_unknown_fraction",
    "drop_nodata_tiles",
    "load_city_osm",
    "load_image_stacks",
    "read_stack",
    "nodata_color",
    "nodata_dropped_dataset",
    "nodata_mask",
    "load_tiled_dataset",
    "pair_files",
    "scan_pairs",
    "OverheadFusionDatasetMapper",
    "TileCache",
    "cut_tile",
    "decode_source",
    "read_tile",
    "tile_box",
]
