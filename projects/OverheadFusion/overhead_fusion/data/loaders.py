"""Dataset dicts for tiled aerial images with colour-coded label images.

Every dict describes one tile of a large image: ``tile = [row, col, grid, crop]`` means the
top-left ``crop`` x ``crop`` square (``crop = 0``: the largest square) is split into a
``grid`` x ``grid`` array of tiles; the mapper reads the image, cuts the tile and resizes it.
"""

import logging
import os
from typing import Dict, List, Sequence, Tuple

from .label_formats import LABEL_FORMATS

__all__ = ["IMAGE_EXTENSIONS", "pair_files", "load_tiled_dataset", "load_city_osm"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def _index(directory: str, suffix: str) -> Dict[str, str]:
    files = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS and stem.endswith(suffix):
            files[stem[: len(stem) - len(suffix)] if suffix else stem] = os.path.join(
                directory, name
            )
    return files


def pair_files(
    image_dir: str, label_dir: str, image_suffix: str = "", label_suffix: str = ""
) -> List[Tuple[str, str, str]]:
    """Pairs images and label images whose names agree once the suffixes are removed.

    ``berlin1_image.png`` / ``berlin1_labels.png`` pair with suffixes ``_image`` / ``_labels``.
    Unpaired and empty files are skipped with a warning that counts them.

    Returns:
        sorted list of (key, image path, label path).
    """
    for d in (image_dir, label_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"dataset folder {d} does not exist")
    images, labels = _index(image_dir, image_suffix), _index(label_dir, label_suffix)
    pairs, unpaired, empty = [], sorted(set(images) ^ set(labels)), []
    for key in sorted(set(images) & set(labels)):
        if os.path.getsize(images[key]) == 0 or os.path.getsize(labels[key]) == 0:
            empty.append(key)
            continue
        pairs.append((key, images[key], labels[key]))
    if unpaired:
        logger.warning(
            "%s / %s: skipped %d files without a partner (e.g. %s)",
            image_dir,
            label_dir,
            len(unpaired),
            unpaired[0],
        )
    if empty:
        logger.warning("%s: skipped %d empty files (e.g. %s)", image_dir, len(empty), empty[0])
    if not pairs:
        raise FileNotFoundError(
            f"no image / label pairs in {image_dir} (suffix '{image_suffix}') and {label_dir} "
            f"(suffix '{label_suffix}')"
        )
    return pairs


def load_tiled_dataset(
    image_dir: str,
    label_dir: str,
    label_format: str,
    image_suffix: str = "",
    label_suffix: str = "",
    crop: int = 0,
    grid: int = 1,
    keys: Sequence[str] = None,
) -> List[dict]:
    """Generic loader: images + colour-coded label images, cut into ``grid`` x ``grid`` tiles.

    Args:
        label_format: a key of LABEL_FORMATS (the colour table of the label images).
        crop: side of the top-left square used (0: the largest square of each image).
        grid: tiles per side.
        keys: optional subset of pair keys (e.g. a split).

    Returns:
        detectron2 dataset dicts with "file_name", "sem_seg_file_name", "image_id", "tile",
        "label_format".
    """
    if label_format not in LABEL_FORMATS:
        raise KeyError(f"unknown label format {label_format}; known: {sorted(LABEL_FORMATS)}")
    if grid < 1 or crop < 0:
        raise ValueError(f"tiling needs grid >= 1 and crop >= 0, got grid={grid}, crop={crop}")
    wanted = None if keys is None else set(keys)
    dicts = []
    for key, image, label in pair_files(image_dir, label_dir, image_suffix, label_suffix):
        if wanted is not None and key not in wanted:
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
    return dicts


def load_city_osm(city_dir: str, crop: int = 2208, grid: int = 4, keys=None) -> List[dict]:
    """City-OSM (Kaiser et al. 2017) in its release layout: ``<city>/<city><n>_image.png`` and
    ``<city>/<city><n>_labels.png``; the paper's tiling: 2208 px crop, 4 x 4 tiles."""
    return load_tiled_dataset(
        city_dir, city_dir, "city_osm", "_image", "_labels", crop=crop, grid=grid, keys=keys
    )
