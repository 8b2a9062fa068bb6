"""Plain-torch operators of GRMNet (importable without detectron2)."""

from .grm import (
    ABSOLUTE_DIM,
    RELATIVE_DIMS,
    SELECTION_MANNERS,
    absolute_position,
    grm_feature_dim,
    grm_features,
    pad_reference_pool,
    relative_position,
    saturating_cast,
    select_references,
    tile_to,
)
from .grm_reference import grm_features_reference

__all__ = [
    "ABSOLUTE_DIM",
    "RELATIVE_DIMS",
    "SELECTION_MANNERS",
    "absolute_position",
    "grm_feature_dim",
    "grm_features",
    "grm_features_reference",
    "pad_reference_pool",
    "relative_position",
    "saturating_cast",
    "select_references",
    "tile_to",
]
