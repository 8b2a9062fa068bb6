"""Loader of SketchyScene-Matching: one dataset record per (sketch, expression) pair.

Layout under a dataset root (detectron2 style, see datasets/README.md)::

    sentence_instance_{split}.json     [{"key": id, "sen_instIdx_map": {expression: [idx, ...]}}]
    vocab.txt                          one token a line, <pad> = 0, <unk> = 1
    {split}/DRAWING_GT/L0_sample{id}.png
    {split}/CLASS_GT/sample_{id}_class.mat        key CLASS_GT: class ids (1-based, 46 classes)
    {split}/INSTANCE_GT/sample_{id}_instance.mat  key INSTANCE_GT: instance ids (0 = none)

An instance index is the 0-based rank of a non-zero id of INSTANCE_GT; its category is the
majority non-zero CLASS_GT label inside its mask.
"""

import json
import logging
import os
from typing import Dict, List, Optional

import numpy as np
import pycocotools.mask as mask_util
import scipy.io
from detectron2.structures import BoxMode

from .categories import SKETCHYSCENE_CATEGORIES

logger = logging.getLogger(__name__)


def drawing_path(root: str, split: str, key) -> str:
    return os.path.join(root, split, "DRAWING_GT", f"L0_sample{key}.png")


def class_gt_path(root: str, split: str, key) -> str:
    return os.path.join(root, split, "CLASS_GT", f"sample_{key}_class.mat")


def instance_gt_path(root: str, split: str, key) -> str:
    return os.path.join(root, split, "INSTANCE_GT", f"sample_{key}_instance.mat")


def expressions_path(root: str, split: str) -> str:
    return os.path.join(root, f"sentence_instance_{split}.json")


def read_expression_file(path: str) -> List[dict]:
    """Reads and validates ``sentence_instance_{split}.json``. Raises ValueError naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"expression file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of {{key, sen_instIdx_map}} entries")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "key" not in entry or "sen_instIdx_map" not in entry:
            raise ValueError(f"{path}: entry {i} lacks 'key' or 'sen_instIdx_map'")
    return entries


def _load_mat(path: str, key: str) -> np.ndarray:
    array = scipy.io.loadmat(path)[key]
    if array.ndim != 2:
        raise ValueError(f"{path}: {key} has shape {array.shape}, expected 2-D")
    return array


def read_instances(class_mat: str, instance_mat: str) -> List[Optional[dict]]:
    """Instances of one sketch in instance-index order, as detectron2 annotation dicts.

    Each is ``{"bbox" (XYXY_ABS), "bbox_mode", "category_id" (0-based), "segmentation"
    (compressed RLE, str counts), "instance_id"}``, or None when its category is invalid.

    Returns:
        (list of annotations or None, (height, width)).
    """
    classes = _load_mat(class_mat, "CLASS_GT")
    instances = _load_mat(instance_mat, "INSTANCE_GT")
    if classes.shape != instances.shape:
        raise ValueError(
            f"{class_mat} and {instance_mat} differ in size: {classes.shape} vs {instances.shape}"
        )
    annotations = []
    for inst_id in np.unique(instances[instances != 0]):
        mask = instances == inst_id
        labels = classes[mask]
        labels = labels[labels > 0]
        if labels.size == 0:
            annotations.append(None)
            continue
        label = int(np.bincount(labels.astype(np.int64)).argmax())
        if not 1 <= label <= len(SKETCHYSCENE_CATEGORIES):
            annotations.append(None)
            continue
        ys, xs = np.nonzero(mask)
        rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        annotations.append(
            {
                "bbox": [
                    float(xs.min()),
                    float(ys.min()),
                    float(xs.max() + 1),
                    float(ys.max() + 1),
                ],
                "bbox_mode": BoxMode.XYXY_ABS,
                "category_id": label - 1,
                "segmentation": rle,
                "instance_id": int(inst_id),
            }
        )
    return annotations, instances.shape


def load_sketchyscene_matching(root: str, split: str) -> List[Dict]:
    """Dataset records of one split: one per (sketch, expression) pair.

    Record fields: file_name, height, width, image_id (``key * 1000 + expression index``),
    sketch_id, expression, annotations (the referred instances only). Sketches with missing or
    unreadable files and expressions with invalid instance indices are skipped with a warning
    and a count.
    """
    path = expressions_path(root, split)
    entries = read_expression_file(path)
    records, cache = [], {}
    skipped_sketches, skipped_expressions = [], 0
    for n, entry in enumerate(entries):
        key = entry["key"]
        files = (
            drawing_path(root, split, key),
            class_gt_path(root, split, key),
            instance_gt_path(root, split, key),
        )
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            skipped_sketches.append(f"{key}: missing {missing[0]}")
            continue
        try:
            if key not in cache:
                cache[key] = read_instances(files[1], files[2])
            annotations, (height, width) = cache[key]
        except Exception as e:  # scipy raises many types on corrupt .mat files
            skipped_sketches.append(f"{key}: {type(e).__name__}: {e}")
            continue
        for i, (expression, indices) in enumerate(entry["sen_instIdx_map"].items()):
            referred = [
                annotations[j] if isinstance(j, int) and 0 <= j < len(annotations) else None
                for j in indices
            ]
            if not referred or any(a is None for a in referred):
                skipped_expressions += 1
                continue
            records.append(
                {
                    "file_name": files[0],
                    "height": int(height),
                    "width": int(width),
                    "image_id": int(key) * 1000 + i,
                    "sketch_id": int(key),
                    "expression": expression,
                    "annotations": referred,
                }
            )
        if (n + 1) % 200 == 0:
            logger.info(
                "SketchyScene-Matching %s: read %d / %d sketches", split, n + 1, len(entries)
            )
    if skipped_sketches:
        logger.warning(
            "%s: skipped %d of %d sketches (missing or corrupt files), e.g. %s",
            path,
            len(skipped_sketches),
            len(entries),
            skipped_sketches[0],
        )
    if skipped_expressions:
        logger.warning(
            "%s: skipped %d expressions referring to invalid instance indices",
            path,
            skipped_expressions,
        )
    logger.info("Loaded %d (sketch, expression) pairs from %s", len(records), path)
    return records
