"""Dataset dicts for tiled aerial images with colour-coded label images.

Every dict describes one tile of a large image: ``tile = [row, col, grid, crop]`` means the
top-left ``crop`` x ``crop`` square (``crop = 0``: the largest square) is split into a
``grid`` x ``grid`` array of tiles; the mapper reads the image, cuts the tile and resizes it.

Loading never lets a bad pair through silently. Two files with one key fail with both paths;
unpaired files, keys of a split without files, unreadable, empty, too small and mismatched
image / label pairs are left out, every tile of them listed with its reason in the
:class:`~d2common.data.validation.LoadReport` of the returned records. With ``full_decode``
(test splits) both files are decoded completely, which also finds truncated files and label
colours outside the table.
"""

import logging
import os
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import numpy as np

from d2common.data.validation import (
    BadSampleError,
    LoadReport,
    RecordList,
    check_same_size,
    check_unique_keys,
    finalize_records,
    read_image_checked,
    read_image_size,
)

from .label_formats import LABEL_FORMATS, LabelFormat, label_unknown_fraction

__all__ = [
    "IMAGE_EXTENSIONS",
    "MIN_TILE_SIDE",
    "check_pair",
    "check_tiling",
    "pair_files",
    "scan_pairs",
    "load_tiled_dataset",
    "load_city_osm",
    "nodata_mask",
    "drop_nodata_tiles",
    "tile_box",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
# Smallest tile side (pixels of the source image) accepted: below it a tile resized to the
# network input is an upsampled blur, not an overhead image.
MIN_TILE_SIDE = 16


def tile_box(height: int, width: int, tile):
    """(x0, y0, x1, y1) of tile ``[row, col, grid, crop]`` in an image of the given size."""
    row, col, grid, crop = tile
    side = min(height, width) if crop <= 0 else min(crop, height, width)
    step = side // grid
    return col * step, row * step, (col + 1) * step, (row + 1) * step


def nodata_mask(image: np.ndarray, color) -> np.ndarray:
    """(H, W, 3) RGB image -> (H, W) bool, True where every channel equals ``color``
    (Massachusetts Roads / Buildings: white (255, 255, 255) outside the photographed area)."""
    return (image == np.asarray(color, dtype=image.dtype).reshape(1, 1, 3)).all(axis=2)


def drop_nodata_tiles(records: List[dict], color, max_fraction: float) -> RecordList:
    """Leaves out the tiles with more than ``max_fraction`` of no-data pixels (``color``).

    Every source image is decoded once; the dropped tiles join the exclusions of the records'
    :class:`~d2common.data.validation.LoadReport` with their fraction, so an evaluation reports
    them.

    Args:
        records: dataset dicts with "file_name" and "tile" (as :func:`load_tiled_dataset`).
        color: (r, g, b) of no-data pixels.
        max_fraction: largest no-data fraction of a kept tile, in [0, 1].

    Returns:
        the kept records, in their order, with the merged load report.
    """
    by_file: Dict[str, List[int]] = OrderedDict()
    for i, r in enumerate(records):
        by_file.setdefault(r["file_name"], []).append(i)
    keep = [True] * len(records)
    excluded = []
    for path, indices in by_file.items():
        nodata = nodata_mask(read_image_checked(path, format="RGB"), color)
        for i in indices:
            x0, y0, x1, y1 = tile_box(*nodata.shape, records[i].get("tile", [0, 0, 1, 0]))
            fraction = float(nodata[y0:y1, x0:x1].mean())
            if fraction > max_fraction:
                keep[i] = False
                excluded.append(
                    (
                        path,
                        f"no-data tile ({100 * fraction:.1f}% of its pixels are "
                        f"{tuple(int(c) for c in color)}, more than {100 * max_fraction:g}%): "
                        f"{records[i].get('image_id')}",
                    )
                )
    before: LoadReport = getattr(records, "load_report", None)
    previous = list(before.excluded) if before else []
    total = before.num_candidates if before else len(records)
    source = before.source if before else "records"
    kept = [r for r, k in zip(records, keep) if k]
    return finalize_records(kept, previous + excluded, source, num_candidates=total)


def _index(directory: str, suffix: str) -> Dict[str, str]:
    files = []
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS and stem.endswith(suffix):
            key = stem[: len(stem) - len(suffix)] if suffix else stem
            files.append((key, os.path.join(directory, name)))
    # berlin1_image.png beside berlin1_image.tif: refuse rather than pick one of them.
    check_unique_keys(files, f"image (in {directory})")
    return dict(files)


def scan_pairs(
    image_dir: str, label_dir: str, image_suffix: str = "", label_suffix: str = ""
) -> Tuple[List[Tuple[str, str, str]], List[Tuple[str, str, str]]]:
    """Pairs images and label images whose names agree once the suffixes are removed.

    Returns:
        (sorted (key, image path, label path) pairs, sorted (key, path, reason) of unpaired
        files).

    Raises:
        FileNotFoundError: a folder is missing.
        ValueError: two files of one folder share a key (both paths named).
    """
    for d in (image_dir, label_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"dataset folder {d} does not exist")
    images, labels = _index(image_dir, image_suffix), _index(label_dir, label_suffix)
    pairs = [(k, images[k], labels[k]) for k in sorted(set(images) & set(labels))]
    unpaired = [(k, images[k], "unpaired: no label image") for k in images if k not in labels]
    unpaired += [(k, labels[k], "unpaired: no image") for k in labels if k not in images]
    return pairs, sorted(unpaired)


def pair_files(
    image_dir: str, label_dir: str, image_suffix: str = "", label_suffix: str = ""
) -> List[Tuple[str, str, str]]:
    """The pairs of :func:`scan_pairs`; unpaired and empty files are skipped with a warning that
    counts them.

    ``berlin1_image.png`` / ``berlin1_labels.png`` pair with suffixes ``_image`` / ``_labels``.

    Returns:
        sorted list of (key, image path, label path).
    """
    found, unpaired = scan_pairs(image_dir, label_dir, image_suffix, label_suffix)
    pairs, empty = [], []
    for key, image, label in found:
        if os.path.getsize(image) == 0 or os.path.getsize(label) == 0:
            empty.append(key)
            continue
        pairs.append((key, image, label))
    if unpaired:
        logger.warning(
            "%s / %s: skipped %d files without a partner (e.g. %s)",
            image_dir,
            label_dir,
            len(unpaired),
            unpaired[0][1],
        )
    if empty:
        logger.warning("%s: skipped %d empty files (e.g. %s)", image_dir, len(empty), empty[0])
    if not pairs:
        raise FileNotFoundError(
            f"no image / label pairs in {image_dir} (suffix '{image_suffix}') and {label_dir} "
            f"(suffix '{label_suffix}')"
        )
    return pairs


def check_tiling(path: str, hw, crop: int, grid: int) -> None:
    """Raises when an image is too small for its tiling: smaller than ``crop`` (its tiles would
    differ from the declared ones) or with tiles below ``MIN_TILE_SIDE``."""
    need = max(crop, grid * MIN_TILE_SIDE)
    if min(hw[:2]) < need:
        raise BadSampleError(
            path,
            f"image of size {hw[0]}x{hw[1]} is too small for {grid}x{grid} tiles of a "
            f"{crop or 'largest'} px square (needs {need}x{need})",
        )


def check_pair(
    image_path: str,
    label_path: str,
    fmt: LabelFormat,
    crop: int = 0,
    grid: int = 1,
    full_decode: bool = True,
) -> None:
    """Validates one image / label pair for a ``grid`` x ``grid`` tiling of a ``crop`` square.

    Args:
        fmt: the colour table of the label image.
        full_decode: decode both files completely (finds truncated files and warns about label
            colours outside the table, raising when they are most of the label); otherwise only
            the headers are read (missing, empty, unreadable, too small, sizes that differ).

    Raises:
        BadSampleError: naming the file at fault (for a size mismatch, both files).
    """
    if full_decode:
        image_hw = read_image_checked(image_path, format="RGB").shape[:2]
        label = read_image_checked(label_path, format="RGB")
        label_hw = label.shape[:2]
    else:
        image_hw, label_hw = read_image_size(image_path), read_image_size(label_path)
    check_tiling(image_path, image_hw, crop, grid)
    check_same_size(image_hw, label_hw, image_path, label_path)
    if full_decode:
        label_unknown_fraction(label, fmt, label_path)


def load_tiled_dataset(
    image_dir: str,
    label_dir: str,
    label_format: str,
    image_suffix: str = "",
    label_suffix: str = "",
    crop: int = 0,
    grid: int = 1,
    keys: Sequence[str] = None,
    full_decode: bool = True,
) -> RecordList:
    """Generic loader: images + colour-coded label images, cut into ``grid`` x ``grid`` tiles.

    Args:
        label_format: a key of LABEL_FORMATS (the colour table of the label images).
        crop: side of the top-left square used (0: the largest square of each image).
        grid: tiles per side.
        keys: optional subset of pair keys (e.g. a split); keys without files are reported.
        full_decode: decode every file at load (test splits: a truncated file is excluded here
            and never reaches the evaluation). False reads headers only (training splits: the
            mapper decodes, skips and counts bad files).

    Returns:
        detectron2 dataset dicts with "file_name", "sem_seg_file_name", "image_id", "tile",
        "label_format", as a ``RecordList`` whose ``load_report`` lists every excluded tile
        with its file and reason.
    """
    if label_format not in LABEL_FORMATS:
        raise KeyError(f"unknown label format {label_format}; known: {sorted(LABEL_FORMATS)}")
    if grid < 1 or crop < 0:
        raise ValueError(f"tiling needs grid >= 1 and crop >= 0, got grid={grid}, crop={crop}")
    fmt = LABEL_FORMATS[label_format]
    pairs, unpaired = scan_pairs(image_dir, label_dir, image_suffix, label_suffix)
    if keys is not None:
        wanted = set(keys)
        known = {k for k, _, _ in pairs} | {k for k, _, _ in unpaired}
        pairs = [p for p in pairs if p[0] in wanted]
        unpaired = [u for u in unpaired if u[0] in wanted]
        unpaired += [
            (k, os.path.join(image_dir, k + image_suffix), "listed in the split but not found")
            for k in dict.fromkeys(keys)
            if k not in known
        ]
    tiles_per_pair = grid * grid
    excluded = [(path, reason) for _, path, reason in unpaired for _ in range(tiles_per_pair)]
    dicts = []
    for key, image, label in pairs:
        try:
            check_pair(image, label, fmt, crop, grid, full_decode)
        except BadSampleError as e:
            excluded += [(e.path, e.reason)] * tiles_per_pair
            continue
        for row in range(grid):
            for col in range(grid):
                dicts.append(
                    {
                        "file_name": image,
                        "sem_seg_file_name": label,
                        "image_id": f"{key}_{row}_{col}",
                        "tile": [row, col, grid, crop],
                        "label_format": label_format,
                    }
                )
    records = finalize_records(dicts, excluded, image_dir)
    if not dicts:
        raise FileNotFoundError(
            f"no usable image / label pairs in {image_dir} (suffix '{image_suffix}') and "
            f"{label_dir} (suffix '{label_suffix}'): {records.load_report.summary()}"
        )
    return records


def load_city_osm(
    city_dir: str, crop: int = 2208, grid: int = 4, keys=None, full_decode: bool = True
) -> RecordList:
    """City-OSM (Kaiser et al. 2017) in its release layout: ``<city>/<city><n>_image.png`` and
    ``<city>/<city><n>_labels.png``; the paper's tiling: 2208 px crop, 4 x 4 tiles."""
    return load_tiled_dataset(
        city_dir,
        city_dir,
        "city_osm",
        "_image",
        "_labels",
        crop=crop,
        grid=grid,
        keys=keys,
        full_decode=full_decode,
    )
