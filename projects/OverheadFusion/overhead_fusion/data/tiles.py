"""Reading tiles: one tile from its decoded source (:func:`read_tile`), or every tile of a source
decoded once and kept resized in a bounded per-process cache (:class:`TileCache`), so that a
300 px tile does not decode its whole 1500 px (or 6000 px) source each time it is loaded."""

import logging
from collections import OrderedDict
from typing import Optional, Set

import cv2
import numpy as np

from d2common.data.validation import BadSampleError, check_same_size, read_image_checked

from .label_formats import (
    IGNORE_LABEL,
    LABEL_FORMATS,
    MAX_UNKNOWN_FRACTION,
    decode_color_label,
    label_unknown_fraction,
)
from .loaders import check_tiling, nodata_mask, tile_box

__all__ = ["TileCache", "cut_tile", "decode_source", "read_tile"]

logger = logging.getLogger(__name__)


def read_tile(dataset_dict: dict, size: int, warned: Optional[Set[str]] = None, nodata_color=None):
    """Reads the tile of a dataset dict, resized to ``size`` x ``size``.

    Both files are fully decoded and checked: a truncated, corrupt or missing file, an image too
    small for its tiling and a label of another size than its image raise. Images are resized
    with area interpolation, labels decoded from their colours (colours outside the table become
    ``IGNORE_LABEL``, with a warning giving their fraction) and resized with nearest neighbour
    (bilinear resizing would blend class ids at edges).

    Args:
        warned: label files already warned about (the warning is given once per file; a tile
            mostly of unknown colours raises every time).
        nodata_color: (r, g, b) of no-data image pixels, labelled ``IGNORE_LABEL`` (decided at
            the source resolution, before resizing); None keeps their labels.

    Returns:
        image (size, size, 3) uint8 RGB; labels (size, size) uint8 class ids, or None without a
        label file.

    Raises:
        BadSampleError: naming the file at fault.
    """
    image, label_rgb = decode_source(dataset_dict)
    return cut_tile(dataset_dict, image, label_rgb, size, warned, nodata_color)


def decode_source(dataset_dict: dict):
    """Decodes the source image of a tile dict and its colour label, checked as in
    :func:`read_tile`.

    Returns:
        image (H, W, 3) uint8 RGB; label (H, W, 3) uint8 RGB or None without a label file.

    Raises:
        BadSampleError: naming the file at fault.
    """
    image_path = dataset_dict["file_name"]
    image = read_image_checked(image_path, format="RGB")
    tile = dataset_dict.get("tile", [0, 0, 1, 0])
    check_tiling(image_path, image.shape, tile[3], tile[2])
    label_rgb = None
    if "sem_seg_file_name" in dataset_dict:
        label_path = dataset_dict["sem_seg_file_name"]
        label_rgb = read_image_checked(label_path, format="RGB")
        # A label of another size would be cut at other places: misaligned tiles.
        check_same_size(image.shape, label_rgb.shape, image_path, label_path)
    return image, label_rgb


def cut_tile(
    dataset_dict: dict,
    image: np.ndarray,
    label_rgb: Optional[np.ndarray],
    size: int,
    warned: Optional[Set[str]] = None,
    nodata_color=None,
):
    """Cuts the tile of ``dataset_dict`` out of its decoded source (see :func:`read_tile`).

    Args:
        image: (H, W, 3) uint8 RGB source image; label_rgb: (H, W, 3) or None.

    Returns:
        image (size, size, 3) uint8 RGB; labels (size, size) uint8 or None.
    """
    x0, y0, x1, y1 = tile_box(
        image.shape[0], image.shape[1], dataset_dict.get("tile", [0, 0, 1, 0])
    )
    labels = None
    if label_rgb is not None:
        label_path = dataset_dict["sem_seg_file_name"]
        fmt = LABEL_FORMATS[dataset_dict.get("label_format", "city_osm")]
        tile_rgb = np.ascontiguousarray(label_rgb[y0:y1, x0:x1])
        ids = decode_color_label(tile_rgb, fmt)
        unknown = float((ids == fmt.unmatched).mean())
        if unknown > 0 and (
            warned is None or label_path not in warned or unknown > MAX_UNKNOWN_FRACTION
        ):
            label_unknown_fraction(tile_rgb, fmt, label_path)
            if warned is not None:
                warned.add(label_path)
        if nodata_color is not None:
            # Outside the photographed area the masks still draw roads: nothing to learn from.
            ids[nodata_mask(image[y0:y1, x0:x1], nodata_color)] = IGNORE_LABEL
        labels = cv2.resize(ids, (size, size), interpolation=cv2.INTER_NEAREST)
    tile = cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(tile), labels


class TileCache:
    """Resized tiles of recently decoded sources, least recently used first out.

    A miss decodes the tile's source once and cuts all its ``grid x grid`` tiles (a tile that
    cannot be cut keeps its error, raised when it is asked for). Entries are copies: callers may
    modify what they get. One cache per process (each data-loader worker has its own).

    Args:
        max_bytes: bound on the cached pixels (image and label bytes); 0 disables the cache.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._tiles: "OrderedDict[tuple, object]" = OrderedDict()
        self._bytes = 0
        self.decodes = 0
        self.hits = 0

    @staticmethod
    def _key(dataset_dict, tile, size, nodata_color):
        return (
            dataset_dict["file_name"],
            dataset_dict.get("sem_seg_file_name"),
            dataset_dict.get("label_format", "city_osm"),
            tuple(tile),
            size,
            None if nodata_color is None else tuple(nodata_color),
        )

    @staticmethod
    def _nbytes(entry) -> int:
        if isinstance(entry, BadSampleError):
            return 0
        return entry[0].nbytes + (0 if entry[1] is None else entry[1].nbytes)

    def get(self, dataset_dict: dict, size: int, warned=None, nodata_color=None):
        """As :func:`read_tile` (same arrays, same errors)."""
        tile = list(dataset_dict.get("tile", [0, 0, 1, 0]))
        if self.max_bytes <= 0:
            return read_tile(dataset_dict, size, warned, nodata_color)
        key = self._key(dataset_dict, tile, size, nodata_color)
        if key in self._tiles:
            self.hits += 1
            self._tiles.move_to_end(key)
            entry = self._tiles[key]
        else:
            entry = self._fill(dataset_dict, tile, size, warned, nodata_color, key)
        if isinstance(entry, BadSampleError):
            raise entry
        image, labels = entry
        return image.copy(), None if labels is None else labels.copy()

    def _fill(self, dataset_dict, tile, size, warned, nodata_color, wanted):
        image, label_rgb = decode_source(dataset_dict)
        self.decodes += 1
        _, _, grid, crop = tile
        result = None
        for row in range(grid):
            for col in range(grid):
                sibling = dict(dataset_dict, tile=[row, col, grid, crop])
                try:
                    entry = cut_tile(sibling, image, label_rgb, size, warned, nodata_color)
                except BadSampleError as e:
                    entry = e
                key = self._key(sibling, sibling["tile"], size, nodata_color)
                if key == wanted:
                    result = entry
                self._put(key, entry)
        return result

    def _put(self, key, entry):
        if key in self._tiles:
            self._bytes -= self._nbytes(self._tiles.pop(key))
        self._tiles[key] = entry
        self._bytes += self._nbytes(entry)
        while self._bytes > self.max_bytes and len(self._tiles) > 1:
            _, old = self._tiles.popitem(last=False)
            self._bytes -= self._nbytes(old)
