"""Registration of the real datasets: COCO-low-light, LIS, and any COCO-format directory.

Expected trees under the datasets root are documented in ``datasets/README.md``.
Every loader is lazy (nothing is read at registration) and drops records whose image file is
missing, with one warning giving the count.
"""

import glob
import logging
import os
from typing import List

from detectron2.data import MetadataCatalog
from detectron2.data.datasets import load_coco_json
from detectron2.data.datasets.builtin_meta import _get_builtin_metadata

from d2common.data import register_dataset_once

logger = logging.getLogger(__name__)

# name: (image dir, annotation json), relative to the datasets root.
COCO_LOWLIGHT_SPLITS = {
    "coco_2017_train_lowlight": (
        "coco_lowlight/train2017",
        "coco_lowlight/annotations/instances_train2017.json",
    ),
    "coco_2017_val_lowlight": (
        "coco_lowlight/val2017",
        "coco_lowlight/annotations/instances_val2017.json",
    ),
}

# LIS (Chen et al., IJCV 2023): sRGB low-light ("dark", JPG) and normal-light (png) images.
LIS_SPLITS = {}
for _kind, _folder, _ext, _suffix in [
    ("dark", "RGB-dark", "JPG", "+1"),
    ("normal", "RGB-normal", "png", ""),
]:
    for _split in ("train", "test", "traintest"):
        LIS_SPLITS[f"lis_{_kind}_{_split}"] = (
            f"LIS/{_folder}/JPEGImages",
            f"LIS/annotations/lis_coco_{_ext}_{_split}{_suffix}.json",
        )
# Its 8 classes (bicycle, car, motorbike, bus, bottle, chair, diningtable, tvmonitor) are read
# from the JSONs when a split is loaded.


def load_coco_records(json_file: str, image_root: str, dataset_name: str) -> List[dict]:
    """``load_coco_json`` with clear errors and a skip-with-warning for missing images."""
    if not os.path.isfile(json_file):
        raise FileNotFoundError(
            f"{dataset_name}: annotation file {json_file} does not exist (see "
            "datasets/README.md for the expected layout)"
        )
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"{dataset_name}: image folder {image_root} does not exist")
    try:
        records = load_coco_json(json_file, image_root, dataset_name)
    except (ValueError, KeyError) as e:
        raise ValueError(f"{json_file}: not a valid COCO instances file ({e!r})") from e
    present = [r for r in records if os.path.isfile(r["file_name"])]
    if len(present) < len(records):
        logger.warning(
            "%s: skipped %d of %d images that are missing under %s",
            dataset_name, len(records) - len(present), len(records), image_root,
        )  # fmt: skip
    return present


def register_coco_format(name: str, json_file: str, image_root: str, **metadata) -> None:
    """Registers one COCO-format split (lazy) with the metadata COCOEvaluator needs."""
    register_dataset_once(
        name,
        lambda: load_coco_records(json_file, image_root, name),
        json_file=json_file,
        image_root=image_root,
        evaluator_type="coco",
        **metadata,
    )


def register_coco_lowlight(root: str) -> None:
    """``coco_2017_{train,val}_lowlight``: COCO 2017 through the synthesis, same annotations."""
    for name, (image_dir, json_file) in COCO_LOWLIGHT_SPLITS.items():
        register_coco_format(
            name,
            os.path.join(root, json_file),
            os.path.join(root, image_dir),
            **_get_builtin_metadata("coco"),
        )


def register_lis(root: str) -> None:
    """``lis_{dark,normal}_{train,test,traintest}``: the real LIS dataset (COCO-format JSONs)."""
    for name, (image_dir, json_file) in LIS_SPLITS.items():
        register_coco_format(name, os.path.join(root, json_file), os.path.join(root, image_dir))


def register_coco_directory(prefix: str, directory: str) -> List[str]:
    """Registers ``<prefix>_<split>`` for every ``annotations/instances_<split>.json`` of a folder.

    The folder follows COCO's layout: ``annotations/instances_<split>.json`` with the images
    of ``<split>`` in ``<split>/``. Returns the registered names.
    """
    pattern = os.path.join(directory, "annotations", "instances_*.json")
    json_files = sorted(glob.glob(pattern))
    if not json_files:
        raise FileNotFoundError(f"no {pattern} found: {directory} is not a COCO-format folder")
    names = []
    for json_file in json_files:
        split = os.path.basename(json_file)[len("instances_") : -len(".json")]
        name = f"{prefix}_{split}"
        register_coco_format(name, json_file, os.path.join(directory, split))
        names.append(name)
    return names


def register_cfg_directories(cfg) -> List[str]:
    """Registers the folders of ``DATASETS.LOWLIGHT_NL.COCO_DIRS`` (``"prefix=/path"`` items)."""
    names = []
    for item in cfg.DATASETS.LOWLIGHT_NL.COCO_DIRS:
        prefix, sep, directory = item.partition("=")
        if not sep or not prefix or not directory:
            raise ValueError(
                f"DATASETS.LOWLIGHT_NL.COCO_DIRS item {item!r} must look like 'prefix=/path'"
            )
        names += register_coco_directory(prefix, os.path.expanduser(directory))
    for name in names:  # thing_classes must be known before the model is built
        meta = MetadataCatalog.get(name)
        if not hasattr(meta, "thing_classes"):
            _set_classes_from_json(name, meta.json_file)
    return names


def _set_classes_from_json(name: str, json_file: str) -> None:
    import json

    with open(json_file) as f:
        categories = json.load(f).get("categories", [])
    if not categories:
        raise ValueError(f"{json_file}: no 'categories' in this COCO file")
    categories = sorted(categories, key=lambda c: c["id"])
    MetadataCatalog.get(name).set(
        thing_classes=[c["name"] for c in categories],
        thing_dataset_id_to_contiguous_id={c["id"]: i for i, c in enumerate(categories)},
    )


def register_all_lowlight(root: str) -> None:
    register_coco_lowlight(root)
    register_lis(root)
