"""Registration of the real datasets: COCO-low-light, LIS, and any COCO-format directory.

Expected trees under the datasets root are documented in ``datasets/README.md``.
Every loader is lazy (nothing is read at registration) and drops the records it cannot use
(missing image, duplicate id or file name, unknown category), with one warning and a load
report giving each excluded file and its reason.
"""

import glob
import json
import logging
import os
from collections import Counter, defaultdict
from typing import List

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json
from detectron2.data.datasets.builtin_meta import _get_builtin_metadata

from d2common.data import register_dataset_once
from d2common.data.validation import RecordList, finalize_records

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


def load_coco_records(json_file: str, image_root: str, dataset_name: str) -> RecordList:
    """``load_coco_json`` plus the checks a COCO folder needs, with a load report.

    Excluded (each counted with its reason in the records' ``load_report``): images whose file
    is missing, images whose id is listed more than once (pycocotools would merge them and
    their annotations), files listed under several image ids, and images with an annotation of
    a category id that the file's ``categories`` do not define. Images without annotations
    are kept (detectron2 drops them from training; evaluation scores them). Annotations of an
    image id that ``images`` does not list are ignored with a warning. The files themselves are
    decoded by the mapper. The JSON is parsed twice (here and by pycocotools).

    Returns:
        The kept records (detectron2's standard dataset dicts, contiguous category ids) as a
        :class:`~d2common.data.validation.RecordList`; ``thing_classes`` and
        ``thing_dataset_id_to_contiguous_id`` are set on the dataset's metadata.
    """
    if not os.path.isfile(json_file):
        raise FileNotFoundError(
            f"{dataset_name}: annotation file {json_file} does not exist (see "
            "datasets/README.md for the expected layout)"
        )
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"{dataset_name}: image folder {image_root} does not exist")
    data = _read_coco_json(json_file)
    id_map = _set_category_metadata(dataset_name, data["categories"], json_file)
    excluded = _duplicate_entries(data["images"], image_root, json_file)
    image_ids = {im["id"] for im in data["images"]}
    orphans = sum(a.get("image_id") not in image_ids for a in data["annotations"])
    num_candidates = len(data["images"])
    del data, image_ids  # pycocotools parses the file again: keep one copy in memory at a time
    try:
        # Without a dataset name detectron2 keeps the file's category ids: they are mapped
        # below, so that an unknown id excludes its image instead of failing the whole load.
        records = load_coco_json(json_file, image_root)
    except (ValueError, KeyError, AssertionError) as e:
        raise ValueError(f"{json_file}: not a valid COCO instances file ({e!r})") from e

    bad_ids = {image_id for image_id, _, _ in excluded}
    kept = []
    for record in records:
        if record["image_id"] in bad_ids:
            continue
        unknown = sorted({a["category_id"] for a in record["annotations"]} - set(id_map))
        if unknown:
            reason = f"unknown category id ({unknown} not in the categories of {json_file})"
            excluded.append((record["image_id"], record["file_name"], reason))
            continue
        if not os.path.isfile(record["file_name"]):
            excluded.append((record["image_id"], record["file_name"], "file not found"))
            continue
        for annotation in record["annotations"]:
            annotation["category_id"] = id_map[annotation["category_id"]]
        kept.append(record)
    if orphans:
        logger.warning(
            "%s: %d annotations refer to image ids that 'images' does not list; ignored",
            json_file, orphans,
        )  # fmt: skip
    return finalize_records(
        kept,
        [(path, reason) for _, path, reason in excluded],
        source=f"{dataset_name} ({json_file})",
        num_candidates=num_candidates,
    )


def _read_coco_json(json_file: str) -> dict:
    try:
        with open(json_file) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{json_file}: not a readable JSON file ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{json_file}: not a COCO instances file (no 'images' list)")
    if not data.get("categories"):
        raise ValueError(f"{json_file}: no 'categories' in this COCO file")
    data.setdefault("annotations", [])
    return data


def _set_category_metadata(dataset_name: str, categories: List[dict], json_file: str) -> dict:
    """Sets the classes on the metadata as ``load_coco_json`` would; returns {file id: index}."""
    ids = [c["id"] for c in categories]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{json_file}: category ids are not unique: {sorted(ids)}")
    categories = sorted(categories, key=lambda c: c["id"])
    id_map = {c["id"]: i for i, c in enumerate(categories)}
    meta = MetadataCatalog.get(dataset_name)
    meta.thing_classes = [c["name"] for c in categories]
    meta.thing_dataset_id_to_contiguous_id = id_map
    return id_map


def _duplicate_entries(images: List[dict], image_root: str, json_file: str):
    """(image id, file, reason) of every ``images`` entry whose id or file name is not unique."""
    id_counts = Counter(im["id"] for im in images)
    ids_of_file = defaultdict(set)
    for im in images:
        ids_of_file[im["file_name"]].add(im["id"])
    out = []
    for im in images:
        path = os.path.join(image_root, im["file_name"])
        if id_counts[im["id"]] > 1:
            reason = f"id {im['id']} listed {id_counts[im['id']]} times in {json_file}"
            out.append((im["id"], path, f"duplicate image id ({reason})"))
        elif len(ids_of_file[im["file_name"]]) > 1:
            ids = sorted(ids_of_file[im["file_name"]])
            out.append((im["id"], path, f"duplicate file name (listed under image ids {ids})"))
    return out


def register_coco_format(
    name: str, json_file: str, image_root: str, loader=None, **metadata
) -> None:
    """Registers one COCO-format split (lazy) with the metadata COCOEvaluator needs; ``loader``
    (``load_coco_records`` by default) reads it as ``loader(json_file, image_root, name)``."""
    loader = loader or load_coco_records
    register_dataset_once(
        name,
        lambda: loader(json_file, image_root, name),
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


def load_lis_records(json_file: str, image_root: str, dataset_name: str) -> RecordList:
    """:func:`load_coco_records` for LIS, where every listed image must be usable.

    LIS is a fixed benchmark: AP over a subset of its images is not comparable with published
    figures, so an image that would be excluded (missing file, duplicate id or file name,
    unknown category) stops the load instead.

    Raises:
        FileNotFoundError: the JSON or image folder is missing, or images were excluded (the
            first five named with their reasons).
    """
    records = load_coco_records(json_file, image_root, dataset_name)
    report = records.load_report
    if report.excluded:
        listed = "; ".join(f"{path}: {reason}" for path, reason in report.excluded[:5])
        raise FileNotFoundError(
            f"{dataset_name}: {len(report.excluded)} of the {report.num_candidates} images of "
            f"{json_file} cannot be used ({listed}{'; ...' if len(report.excluded) > 5 else ''})"
            ": LIS is scored on all of its images, none may be left out"
        )
    return records


def register_lis(root: str) -> None:
    """``lis_{dark,normal}_{train,test,traintest}``: the real LIS dataset (COCO-format JSONs)."""
    for name, (image_dir, json_file) in LIS_SPLITS.items():
        register_coco_format(
            name,
            os.path.join(root, json_file),
            os.path.join(root, image_dir),
            loader=load_lis_records,
        )


def register_lis_root(lis_root: str) -> List[str]:
    """Registers the LIS splits from the LIS folder itself (``DATASETS.LOWLIGHT_NL.LIS_ROOT``).

    ``lis_root`` holds ``RGB-dark/``, ``RGB-normal/`` and ``annotations/`` (the layout of
    ``datasets/README.md`` below ``LIS/``). Splits registered from elsewhere under the same
    names are replaced. Loading stays lazy: a missing JSON or image is reported, naming the
    file, when a split is loaded. Returns the names.

    Raises:
        FileNotFoundError: ``lis_root`` is not a folder.
    """
    lis_root = os.path.expanduser(lis_root)
    if not os.path.isdir(lis_root):
        raise FileNotFoundError(
            f"DATASETS.LOWLIGHT_NL.LIS_ROOT: {lis_root} is not a folder (it should hold "
            "RGB-dark/, RGB-normal/ and annotations/ of LIS; see datasets/README.md)"
        )
    for name, (image_dir, json_file) in LIS_SPLITS.items():
        json_file = os.path.join(lis_root, os.path.relpath(json_file, "LIS"))
        image_dir = os.path.join(lis_root, os.path.relpath(image_dir, "LIS"))
        if name in DatasetCatalog.list():
            meta = MetadataCatalog.get(name)
            if (meta.get("json_file"), meta.get("image_root")) == (json_file, image_dir):
                continue
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_coco_format(name, json_file, image_dir, loader=load_lis_records)
    return list(LIS_SPLITS)


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
