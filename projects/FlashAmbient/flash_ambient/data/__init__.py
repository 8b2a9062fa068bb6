"""FAID loading, the toy dataset and the dataset mapper."""

from . import checks, datasets  # noqa: F401  (registers the datasets and start-up checks)
from .faid import MIN_IMAGE_SIZE, find_pairs, load_faid_pairs, pair_name, read_split_file
from .mapper import FlashAmbientDatasetMapper, resize_by_orientation
from .toy import generate_toy_faid, render_pair

__all__ = [
    "MIN_IMAGE_SIZE",
    "find_pairs",
    "load_faid_pairs",
    "pair_name",
    "read_split_file",
    "FlashAmbientDatasetMapper",
    "resize_by_orientation",
    "generate_toy_faid",
    "render_pair",
]
