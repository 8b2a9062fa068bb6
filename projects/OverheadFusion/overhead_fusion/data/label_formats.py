"""Colour tables of the label PNGs this project reads, and the colour -> class-id decoding."""

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

__all__ = ["LabelFormat", "LABEL_FORMATS", "decode_color_label", "encode_color_label"]


@dataclass(frozen=True)
class LabelFormat:
    """Classes of a dataset and the RGB colour(s) of each in its label images."""

    classes: Tuple[str, ...]
    # (r, g, b) -> class id; several colours may map to one class.
    colors: Tuple[Tuple[Tuple[int, int, int], int], ...]
    # Class id of pixels whose colour is in no table entry.
    unmatched: int = 0

    def class_colors(self):
        """(C, 3) uint8, the first colour listed for every class (for visualisation)."""
        out = np.zeros((len(self.classes), 3), np.uint8)
        for color, cls in reversed(self.colors):
            out[cls] = color
        return out


LABEL_FORMATS: Dict[str, LabelFormat] = {
    # City-OSM (Kaiser et al. 2017): building red, road blue, background white.
    "city_osm": LabelFormat(
        classes=("background", "building", "road"),
        colors=(((255, 255, 255), 0), ((255, 0, 0), 1), ((0, 0, 255), 2)),
    ),
    # Massachusetts Roads (Mnih 2013): road 255, else 0 (grey masks read as RGB).
    "mass_roads": LabelFormat(
        classes=("background", "road"), colors=(((0, 0, 0), 0), ((255, 255, 255), 1))
    ),
    # Massachusetts Buildings: building 255 (or red in some releases), else 0.
    "mass_buildings": LabelFormat(
        classes=("background", "building"),
        colors=(((0, 0, 0), 0), ((255, 255, 255), 1), ((255, 0, 0), 1)),
    ),
    # ISPRS Potsdam: the six classes of the benchmark.
    "isprs_potsdam": LabelFormat(
        classes=("impervious", "building", "low_vegetation", "tree", "car", "clutter"),
        colors=(
            ((255, 255, 255), 0),
            ((0, 0, 255), 1),
            ((0, 255, 255), 2),
            ((0, 255, 0), 3),
            ((255, 255, 0), 4),
            ((255, 0, 0), 5),
        ),
        unmatched=5,
    ),
}


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def decode_color_label(label_rgb: np.ndarray, fmt: LabelFormat) -> np.ndarray:
    """(H, W, 3) uint8 RGB label image -> (H, W) uint8 class ids; unknown colours -> unmatched."""
    if label_rgb.ndim != 3 or label_rgb.shape[2] != 3:
        raise ValueError(f"label image must be HxWx3 RGB, got shape {label_rgb.shape}")
    keys = np.array([_pack(np.array(c)) for c, _ in fmt.colors], dtype=np.int64)
    ids = np.array([i for _, i in fmt.colors], dtype=np.uint8)
    order = np.argsort(keys)
    keys, ids = keys[order], ids[order]
    packed = _pack(label_rgb)
    pos = np.clip(np.searchsorted(keys, packed), 0, len(keys) - 1)
    return np.where(keys[pos] == packed, ids[pos], np.uint8(fmt.unmatched)).astype(np.uint8)


def encode_color_label(ids: np.ndarray, fmt: LabelFormat) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 RGB in the format's colours."""
    return fmt.class_colors()[ids]
