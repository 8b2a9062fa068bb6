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
from collections import Counter, OrderedDict
from typing import List, Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util
import scipy.io
from detectron2.structures import BoxMode

from d2common.data.validation import (
    BadSampleError,
    RecordList,
    check_same_size,
    finalize_records,
    read_image_checked,
    unknown_value_fraction,
)

from ..language import tokenize
from .categories import SKETCHYSCENE_CATEGORIES
from .query_types import query_type

logger = logging.getLogger(__name__)

# (height, width) below which a drawing is refused: less than one cell of the coarsest
# backbone stride (32 px) before resizing.
MIN_SKETCH_SIZE = (32, 32)
# image_id = sketch key * IMAGE_ID_STRIDE + expression index.
IMAGE_ID_STRIDE = 1000


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
    try:
        array = scipy.io.loadmat(path)[key]
    except Exception as e:  # scipy raises many types on corrupt .mat files
        raise BadSampleError(path, f"unreadable .mat file ({type(e).__name__}: {e})") from e
    if array.ndim != 2:
        raise BadSampleError(path, f"unreadable .mat file ({key} has shape {array.shape})")
    return array


def _check_same_size(image_shape, label_shape, image_path: str, label_path: str) -> None:
    # One reason kind ("size mismatch") for the load report's counts, whatever the files.
    try:
        check_same_size(image_shape, label_shape, image_path, label_path)
    except BadSampleError as e:
        raise BadSampleError(e.path, f"size mismatch ({e.reason})") from e


def read_instances(class_mat: str, instance_mat: str) -> Tuple[List[Optional[dict]], tuple]:
    """Instances of one sketch in instance-index order, as detectron2 annotation dicts.

    Each is ``{"bbox" (XYXY_ABS), "bbox_mode", "category_id" (0-based), "segmentation"
    (compressed RLE, str counts), "instance_id"}``, or None when its category is invalid.
    CLASS_GT values outside 0..46 are warned about with their fraction of pixels.

    Returns:
        (list of annotations or None, (height, width)).

    Raises:
        BadSampleError: an unreadable file, or CLASS_GT and INSTANCE_GT of different sizes.
    """
    classes = _load_mat(class_mat, "CLASS_GT")
    instances = _load_mat(instance_mat, "INSTANCE_GT")
    _check_same_size(instances.shape, classes.shape, instance_mat, class_mat)
    unknown_value_fraction(
        classes, range(len(SKETCHYSCENE_CATEGORIES) + 1), class_mat, max_fraction=1.0
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


def read_sketch(root: str, split: str, key) -> Tuple[List[Optional[dict]], tuple]:
    """Checks one sketch's files and reads its instances (see :func:`read_instances`).

    The drawing is fully decoded: a missing, truncated, corrupt or too small drawing, or one of
    another size than its CLASS_GT / INSTANCE_GT maps, raises :class:`BadSampleError`.
    """
    drawing, class_mat, instance_mat = (
        drawing_path(root, split, key),
        class_gt_path(root, split, key),
        instance_gt_path(root, split, key),
    )
    image = read_image_checked(drawing, format="L", min_size=MIN_SKETCH_SIZE)
    for path in (class_mat, instance_mat):
        if not os.path.isfile(path):
            raise BadSampleError(path, f"file not found (the ground truth of {drawing})")
    annotations, shape = read_instances(class_mat, instance_mat)
    _check_same_size(image.shape, shape, drawing, class_mat)
    return annotations, shape


def referred_instances(
    annotations: List[Optional[dict]], indices, expression: str
) -> Tuple[List[dict], int]:
    """The annotations an expression refers to, each once, in the order of ``indices``.

    Returns:
        (annotations, number of repeated indices dropped).

    Raises:
        ValueError: an empty expression, no index, an invalid index or an instance without a
            valid category; the message is "<kind> (<details>)".
    """
    if not tokenize(expression):
        raise ValueError(f"empty expression ({expression!r})")
    if not isinstance(indices, list) or not indices:
        raise ValueError(f"expression refers to no instance ({expression!r}: {indices!r})")
    unique = list(OrderedDict.fromkeys(indices))
    referred = []
    for j in unique:
        if not isinstance(j, int) or isinstance(j, bool) or not 0 <= j < len(annotations):
            raise ValueError(
                f"invalid instance index ({expression!r}: {j!r}; "
                f"the sketch has {len(annotations)} instances)"
            )
        if annotations[j] is None:
            raise ValueError(f"instance without a valid category ({expression!r}: index {j})")
        referred.append(annotations[j])
    return referred, len(indices) - len(unique)


def load_sketchyscene_matching(root: str, split: str) -> RecordList:
    """Dataset records of one split: one per (sketch, expression) pair.

    Record fields: file_name, height, width, image_id (``key * 1000 + expression index``),
    sketch_id, expression, annotations (the referred instances only, each once), query_type
    (``"category"`` when the referents are all the instances of their categories in the sketch,
    else ``"position"``; see :mod:`.query_types`).

    Every drawing is fully decoded here. Excluded, with the file and the reason in the records'
    ``load_report``: every expression of a sketch whose drawing or ground truth is missing,
    unreadable, too small or of mismatched size, or whose key the expression file lists more
    than once; empty expressions, expressions without an instance index, with an invalid one
    or referring to an instance without a valid category. An index listed twice ("the dog":
    [6, 6]) is one instance.
    """
    path = expressions_path(root, split)
    entries = read_expression_file(path)
    key_counts = Counter(str(e["key"]) for e in entries)
    records, excluded, cache = [], [], {}
    num_candidates, num_repeated = 0, 0
    for n, entry in enumerate(entries):
        key = entry["key"]
        expressions = list(entry["sen_instIdx_map"].items())
        num_candidates += len(expressions)
        if len(expressions) > IMAGE_ID_STRIDE:
            raise ValueError(
                f"{path}: sketch {key} has {len(expressions)} expressions; image ids "
                f"(key * {IMAGE_ID_STRIDE} + index) allow {IMAGE_ID_STRIDE}"
            )
        try:
            if key_counts[str(key)] > 1:
                raise BadSampleError(
                    drawing_path(root, split, key),
                    f"duplicate sketch key ({key} listed {key_counts[str(key)]} times in {path})",
                )
            if key not in cache:
                cache[key] = read_sketch(root, split, key)
            annotations, (height, width) = cache[key]
            categories = [a["category_id"] if a is not None else None for a in annotations]
        except BadSampleError as e:
            excluded += [(e.path, e.reason)] * len(expressions)
            continue
        for i, (expression, indices) in enumerate(expressions):
            try:
                referred, repeated = referred_instances(annotations, indices, expression)
            except ValueError as e:
                kind, _, detail = str(e).partition(" (")
                excluded.append((path, f"{kind} (sketch {key}: {detail}"))
                continue
            num_repeated += repeated
            records.append(
                {
                    "file_name": drawing_path(root, split, key),
                    "height": int(height),
                    "width": int(width),
                    "image_id": int(key) * IMAGE_ID_STRIDE + i,
                    "sketch_id": int(key),
                    "expression": expression,
                    "annotations": referred,
                    "query_type": query_type(indices, categories),
                }
            )
        if (n + 1) % 200 == 0:
            logger.info(
                "SketchyScene-Matching %s: read %d / %d sketches", split, n + 1, len(entries)
            )
    if num_repeated:
        logger.warning(
            "%s: %d repeated instance indices in expressions; each instance is kept once",
            path,
            num_repeated,
        )
    logger.info("Loaded %d (sketch, expression) pairs from %s", len(records), path)
    return finalize_records(records, excluded, source=path, num_candidates=num_candidates)
