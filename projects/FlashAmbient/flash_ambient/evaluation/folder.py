"""Scores a folder of predicted ambient images (any method's outputs) with the evaluator."""

import glob
import logging
import os
from typing import Dict, List, Optional

import cv2
import torch

from d2common.data.validation import read_image_checked

from ..data.faid import pair_name
from .evaluator import FlashAmbientEvaluator

logger = logging.getLogger(__name__)

_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Name endings that tools add to a pair name: flash_to_ambient.py writes <pair>_flash_output.png.
_OUTPUT_SUFFIXES = ("_output", "_pred", "_prediction", "_result")


def prediction_key(path: str) -> str:
    """``People_014.png``, ``People_014_flash.png``, ``People_014_flash_output.png`` ... ->
    ``People_014``: the pair name a prediction file is matched by."""
    stem = os.path.splitext(os.path.basename(path))[0]
    for suffix in _OUTPUT_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return pair_name(stem)


def match_predictions(prediction_dir: str, record_ids: List[str]) -> Dict[str, str]:
    """Pair name -> prediction file for every record.

    Raises:
        FileNotFoundError: the folder does not exist, or records have no prediction (all listed).
        ValueError: two files match the same pair (both named).
    """
    if not os.path.isdir(prediction_dir):
        raise FileNotFoundError(f"prediction folder {prediction_dir} not found")
    found: Dict[str, str] = {}
    for path in sorted(glob.glob(os.path.join(prediction_dir, "*"))):
        if not path.lower().endswith(_EXTS):
            continue
        key = prediction_key(path)
        if key in found:
            raise ValueError(f"{found[key]} and {path} are both predictions of pair {key}")
        found[key] = path
    missing = [r for r in record_ids if r not in found]
    if missing:
        raise FileNotFoundError(
            f"{prediction_dir}: no prediction for {len(missing)} of {len(record_ids)} pairs: "
            + ", ".join(missing)
        )
    unused = sorted(set(found) - set(record_ids))
    if unused:
        logger.warning(
            "%d prediction(s) of pairs outside the dataset ignored: %s",
            len(unused),
            ", ".join(unused[:10]),
        )
    return {r: found[r] for r in record_ids}


def evaluate_folder(
    records: List[dict],
    mapper,
    prediction_dir: str,
    dataset_name: str,
    output_dir: Optional[str] = None,
    resize_predictions: bool = False,
):
    """Scores every record's prediction file exactly as ``FlashAmbientEvaluator`` scores a model.

    Args:
        records: the dataset's dicts (``image_id`` = pair name).
        mapper: a test-mode ``FlashAmbientDatasetMapper`` (reads and resizes the ambient target).
        resize_predictions: resize a prediction of another size to its target's (area / linear
            interpolation) instead of refusing it.

    Returns:
        the evaluator's results; ``per_image_metrics.csv`` and ``evaluation_records.json`` go to
        ``output_dir``.
    """
    paths = match_predictions(prediction_dir, [str(r["image_id"]) for r in records])
    evaluator = FlashAmbientEvaluator(None, dataset_name, output_dir)
    evaluator.reset()
    for record in records:
        inputs = mapper(record)
        path = paths[str(record["image_id"])]
        pred = read_image_checked(path, format="RGB")
        h, w = inputs["ambient"].shape[-2:]
        if pred.shape[:2] != (h, w):
            if not resize_predictions:
                raise ValueError(
                    f"{path}: prediction of {pred.shape[1]}x{pred.shape[0]}, target "
                    f"{record['ambient_file_name']} of {w}x{h} (after the config's RESIZE); "
                    "pass --resize-predictions to resize it"
                )
            interp = cv2.INTER_AREA if pred.shape[0] * pred.shape[1] > h * w else cv2.INTER_LINEAR
            pred = cv2.resize(pred, (w, h), interpolation=interp)
        output = {"ambient": torch.from_numpy(pred).permute(2, 0, 1).float() / 255.0}
        evaluator.process([inputs], [output])
    return evaluator.evaluate()
