"""FAID loading, the toy dataset and the dataset mapper."""

from . import datasets  # noqa: F401  (registers the datasets)
from .faid import find_pairs, load_faid_pairs, pair_name, read_split_file
from .mapper import FlashAmbientDatasetMapper, resize_by_orientation
from .toy import generate_toy_faid, render_pair

__all__ = [
    "find_pairs",
    "load_faid_pairs",
    "pair_name",
    "read_split_file",
    "FlashAmbientDatasetMapper",
    "resize_by_orientation",
    "generate_toy_faid",
    "render_pair",
]
