"""Registers the project's datasets under ``d2common.data.datasets_root()`` at import.

Expected layout: see ``datasets/README.md``.
"""

import os

from detectron2.data import DatasetCatalog, MetadataCatalog

from d2common.data import datasets_root, ensure_generated, register_dataset_once

from .label_formats import IGNORE_LABEL, LABEL_FORMATS
from .loaders import drop_nodata_tiles, load_city_osm, load_tiled_dataset
from .toy import TOY_GRID, TOY_SPLITS, TOY_TILE_SIZE, generate_toy_split

__all__ = [
    "nodata_dropped_dataset",
    "register_all_overhead_fusion",
    "register_folder_datasets",
    "register_tiled_dataset",
    "toy_dir",
]

# City-OSM: Berlin big images 1-160 train, 161-200 validation (2560 / 640 tiles), Potsdam test.
_CITY_OSM_SPLITS = {
    "overhead_fusion_city_osm_berlin_train": ("berlin", [f"berlin{i}" for i in range(1, 161)]),
    "overhead_fusion_city_osm_berlin_val": ("berlin", [f"berlin{i}" for i in range(161, 201)]),
    "overhead_fusion_city_osm_potsdam_test": ("potsdam", None),
}

# name -> (image dir, label dir, label format, image suffix, label suffix, crop, grid)
_TILED_SPLITS = {
    **{
        f"overhead_fusion_mass_roads_{s}": (
            f"mass_roads/{s}/sat",
            f"mass_roads/{s}/map",
            "mass_roads",
            "",
            "",
            1500,
            5,
        )
        for s in ("train", "valid", "test")
    },
    **{
        f"overhead_fusion_mass_buildings_{s}": (
            f"mass_buildings/{s}/sat",
            f"mass_buildings/{s}/map",
            "mass_buildings",
            "",
            "",
            1500,
            5,
        )
        for s in ("train", "valid", "test")
    },
    "overhead_fusion_potsdam": (
        "potsdam/2_Ortho_RGB",
        "potsdam/5_Labels_all",
        "isprs_potsdam",
        "_RGB",
        "_label",
        6000,
        10,
    ),
}


def toy_dir(root: str = None) -> str:
    return os.path.join(root or datasets_root(), "toy", "overhead_fusion")


def _metadata(label_format: str, **extra):
    fmt = LABEL_FORMATS[label_format]
    return dict(
        stuff_classes=list(fmt.classes),
        stuff_colors=fmt.class_colors().tolist(),
        label_format=label_format,
        ignore_label=IGNORE_LABEL,
        evaluator_type="overhead_fusion",
        **extra,
    )


def _full_decode(name: str) -> bool:
    # Evaluation sets are decoded completely at load, so a truncated file is excluded (and
    # reported) instead of reaching the evaluation; training sets read headers only and leave
    # the decoding to the mapper, which skips and counts bad tiles.
    return not name.endswith("_train")


def register_tiled_dataset(name, image_dir, label_dir, label_format, *args, **kwargs):
    """Registers one generic tiled dataset (arguments as ``load_tiled_dataset``; ``full_decode``
    defaults to True except for names ending in ``_train``)."""
    kwargs.setdefault("full_decode", _full_decode(name))
    register_dataset_once(
        name,
        lambda: load_tiled_dataset(image_dir, label_dir, label_format, *args, **kwargs),
        **_metadata(label_format, image_root=image_dir, sem_seg_root=label_dir),
    )


def register_folder_datasets(entries) -> list:
    """Registers the datasets of INPUT.OVERHEAD_FUSION.FOLDER_DATASETS entries
    ``"NAME:LABEL_FORMAT:IMAGE_DIR:LABEL_DIR"`` (image and label files paired by name, one tile
    per image); a name already registered with other folders is an error.

    Returns:
        the names.
    """
    names = []
    for entry in entries:
        parts = str(entry).split(":")
        if len(parts) != 4 or not all(parts):
            raise ValueError(
                "INPUT.OVERHEAD_FUSION.FOLDER_DATASETS entries are "
                f'"NAME:LABEL_FORMAT:IMAGE_DIR:LABEL_DIR", got "{entry}"'
            )
        name, label_format, image_dir, label_dir = parts
        if label_format not in LABEL_FORMATS:
            raise ValueError(
                f"FOLDER_DATASETS {name}: unknown label format {label_format}; known: "
                f"{sorted(LABEL_FORMATS)}"
            )
        if name in DatasetCatalog.list():
            known = MetadataCatalog.get(name).get("image_root", None)
            if known is not None and os.path.abspath(known) != os.path.abspath(image_dir):
                raise ValueError(
                    f"FOLDER_DATASETS {name}: already registered with images in {known}, "
                    f"not {image_dir}"
                )
        register_tiled_dataset(name, image_dir, label_dir, label_format)
        names.append(name)
    return names


def nodata_dropped_dataset(name: str, color, max_fraction: float) -> str:
    """Registers (once) and returns ``<name>_nodata<max_fraction>``: the tiles of ``name`` with at
    most ``max_fraction`` pixels of no-data ``color`` (see :func:`drop_nodata_tiles`; the dropped
    tiles are in its load report). Metadata are those of ``name``."""
    derived = f"{name}_nodata{max_fraction:g}"
    if tuple(color) != (255, 255, 255):
        derived += "_" + "_".join(str(int(c)) for c in color)
    meta = MetadataCatalog.get(name).as_dict()
    meta.pop("name", None)
    register_dataset_once(
        derived,
        lambda: drop_nodata_tiles(DatasetCatalog.get(name), color, max_fraction),
        **meta,
    )
    return derived


def _load_toy(root: str, split: str):
    directory = os.path.join(toy_dir(root), split)
    ensure_generated(directory, lambda tmp: generate_toy_split(tmp, split))
    return load_city_osm(
        directory, crop=TOY_TILE_SIZE, grid=TOY_GRID, full_decode=_full_decode(f"_{split}")
    )


def register_all_overhead_fusion(root: str = None) -> None:
    """Registers City-OSM, Massachusetts Roads / Buildings, ISPRS Potsdam and the toy splits."""
    root = root or datasets_root()
    for name, (city, keys) in _CITY_OSM_SPLITS.items():
        city_dir = os.path.join(root, "city_osm", city)
        full = _full_decode(name)
        register_dataset_once(
            name,
            lambda d=city_dir, k=keys, f=full: load_city_osm(d, keys=k, full_decode=f),
            **_metadata("city_osm", image_root=city_dir),
        )
    for name, (img, lab, fmt, isuf, lsuf, crop, grid) in _TILED_SPLITS.items():
        register_tiled_dataset(
            name, os.path.join(root, img), os.path.join(root, lab), fmt, isuf, lsuf, crop, grid
        )
    for split in TOY_SPLITS:
        register_dataset_once(
            f"overhead_fusion_toy_{split}",
            lambda s=split: _load_toy(datasets_root(), s),
            **_metadata("city_osm"),
        )


register_all_overhead_fusion()
