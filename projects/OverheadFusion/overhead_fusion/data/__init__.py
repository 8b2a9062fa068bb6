"""Datasets (registered at import), loaders, toy data and the dataset mapper."""

from . import builtin  # noqa: F401  (registers the datasets)
from .label_formats import LABEL_FORMATS, LabelFormat, decode_color_label, encode_color_label
from .loaders import load_city_osm, load_tiled_dataset, pair_files
from .mapper import OverheadFusionDatasetMapper, read_tile, tile_box

__all__ = [
    "LABEL_FORMATS",
    "LabelFormat",
    "decode_color_label",
    "encode_color_label",
    "load_city_osm",
    "load_tiled_dataset",
    "pair_files",
    "OverheadFusionDatasetMapper",
    "read_tile",
    "tile_box",
]
