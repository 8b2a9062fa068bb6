"""Colour tables of the label PNGs this project reads, and the colour -> class-id decoding.

A colour that is in no table entry is never given a class: it decodes to ``IGNORE_LABEL``
(excluded from the loss and from evaluation, like detectron2's ``ignore_label``), and the
fraction of such pixels is reported with a warning (see :func:`label_unknown_fraction`).
"""

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from d2common.data.validation import unknown_value_fraction

__all__ = [
    "IGNORE_LABEL",
    "MAX_UNKNOWN_FRACTION",
    "LabelFormat",
    "LABEL_FORMATS",
    "decode_color_label",
    "encode_color_label",
    "label_unknown_fraction",
]

# Class id of pixels whose colour is in no table entry (the datasets' metadata ``ignore_label``;
# MODEL.OVERHEAD_FUSION.IGNORE_VALUE must equal it, which a start-up check enforces).
IGNORE_LABEL = 255
# A label mostly of unknown colours belongs to another colour table (a wrong label format):
# it is rejected rather than trained on as "ignore everywhere".
MAX_UNKNOWN_FRACTION = 0.5
# Candidates for the colour of ignored pixels in written labels: the first one outside a table.
_IGNORE_COLORS = ((0, 0, 0), (255, 0, 255), (128, 128, 128))


@dataclass(frozen=True)
class LabelFormat:
    """Classes of a dataset and the RGB colour(s) of each in its label images."""

    classes: Tuple[str, ...]
    # (r, g, b) -> class id; several colours may map to one class.
    colors: Tuple[Tuple[Tuple[int, int, int], int], ...]
    # Class id of pixels whose colour is in no table entry.
    unmatched: int = IGNORE_LABEL

    def class_colors(self):
        """(C, 3) uint8, the first colour listed for every class (for visualisation)."""
        out = np.zeros((len(self.classes), 3), np.uint8)
        for color, cls in reversed(self.colors):
            out[cls] = color
        return out

    def ignore_color(self) -> Tuple[int, int, int]:
        """A colour outside the table, written for ``IGNORE_LABEL`` pixels (decodes back to it)."""
        used = {tuple(c) for c, _ in self.colors}
        return next(c for c in _IGNORE_COLORS if c not in used)


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
    ),
}


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def decode_color_label(label_rgb: np.ndarray, fmt: LabelFormat) -> np.ndarray:
    """(H, W, 3) uint8 RGB label image -> (H, W) uint8 class ids.

    Colours in no table entry become ``fmt.unmatched`` (``IGNORE_LABEL`` for every built-in
    format); :func:`label_unknown_fraction` says how many there are.
    """
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
    """(H, W) class ids -> (H, W, 3) uint8 RGB in the format's colours; ``IGNORE_LABEL`` pixels
    get :meth:`LabelFormat.ignore_color`."""
    table = np.zeros((256, 3), np.uint8)
    table[: len(fmt.classes)] = fmt.class_colors()
    table[IGNORE_LABEL] = fmt.ignore_color()
    return table[ids]


def label_unknown_fraction(
    label_rgb: np.ndarray, fmt: LabelFormat, path: str, max_fraction: float = MAX_UNKNOWN_FRACTION
) -> float:
    """Fraction of the pixels of an (H, W, 3) RGB label whose colour is not in ``fmt``.

    Warns (naming ``path`` and the fraction) when there are any; raises
    :class:`~d2common.data.validation.BadSampleError` above ``max_fraction``.
    """
    allowed = [int(k) for k in np.unique([_pack(np.array(c)) for c, _ in fmt.colors])]
    return unknown_value_fraction(_pack(label_rgb), allowed, path, max_fraction=max_fraction)
