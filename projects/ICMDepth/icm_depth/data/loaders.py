"""Dataset-dict loaders of KITTI (Eigen split), Cityscapes-DVPS and SemKITTI-DVPS.

Records carry paths only (no pixels): ``file_name``, ``depth_file``, ``image_id``, ``height``,
``width``, and when the dataset has instances ``instance_format`` + ``instance_file``
(+ ``class_file``). The loaders run the cheap checks (file existence and image headers): a
missing file, an unpaired or ambiguous file, a duplicate key, a depth or instance map of another
size than its image and a too small image exclude the record, and the returned
:class:`~d2common.data.validation.RecordList` carries the exclusions with their reasons. A
truncated or corrupt file needs a full decode: the mapper finds it.
"""

import glob
import logging
import os
from typing import List, Optional, Tuple

from d2common.data.validation import (
    BadSampleError,
    RecordList,
    finalize_records,
    read_image_size,
)

from .formats import focal_from_depth_name

logger = logging.getLogger(__name__)

_IMAGE_SUFFIX = "_leftImg8bit.png"
# The encoder's coarsest features are at stride 32: a smaller image has no full cell there.
MIN_IMAGE_SIZE = (32, 32)
_MAP_NAMES = {"depth_file": "depth map", "instance_file": "instance map", "class_file": "class map"}


def _require_dir(path: str, what: str) -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"{what}: directory {path} not found (see datasets/README.md for the "
            "expected tree under $DETECTRON2_DATASETS)"
        )


def check_record_files(record: dict) -> dict:
    """Header checks of one record; sets its ``height`` / ``width``.

    Raises:
        BadSampleError: a missing file, an image smaller than :data:`MIN_IMAGE_SIZE`, or a
            depth / instance / class map whose size differs from the image's.
    """
    height, width = read_image_size(record["file_name"], min_size=MIN_IMAGE_SIZE)
    for key, what in _MAP_NAMES.items():
        if record.get(key):
            h, w = read_image_size(record[key])
            if (h, w) != (height, width):
                raise BadSampleError(
                    record[key],
                    f"size mismatch ({what} {h}x{w}, image {height}x{width}: "
                    f"{record['file_name']})",
                )
    record["height"], record["width"] = height, width
    return record


def _keep_checked(candidates: List[dict], excluded: List[Tuple[str, str]]) -> List[dict]:
    kept = []
    for record in candidates:
        try:
            kept.append(check_record_files(record))
        except BadSampleError as e:
            excluded.append((e.path, e.reason))
    return kept


def _unpaired(split_dir: str, pattern: str, suffix_of, images) -> List[Tuple[str, str]]:
    """Files matching ``pattern`` whose image (``suffix_of(path)`` + suffix) is not there."""
    prefixes = {image[: -len(_IMAGE_SUFFIX)] for image in images}
    return [
        (path, "unpaired (no image for it)")
        for path in sorted(glob.glob(os.path.join(split_dir, pattern)))
        if suffix_of(path) not in prefixes
    ]


def load_cityscapes_dvps(split_dir: str) -> RecordList:
    """Cityscapes-DVPS split folder (``video_sequence/<split>``) -> records.

    Triplets ``<prefix>_leftImg8bit.png``, ``<prefix>_depth.png``,
    ``<prefix>_gtFine_instanceTrainIds.png``.
    """
    _require_dir(split_dir, "Cityscapes-DVPS")
    images = sorted(glob.glob(os.path.join(split_dir, "*" + _IMAGE_SUFFIX)))
    candidates, excluded = [], []
    for image in images:
        prefix = image[: -len(_IMAGE_SUFFIX)]
        depth, panoptic = prefix + "_depth.png", prefix + "_gtFine_instanceTrainIds.png"
        missing = [p for p in (depth, panoptic) if not os.path.isfile(p)]
        if missing:
            excluded.append((missing[0], "file not found"))
            continue
        candidates.append(
            {
                "file_name": image,
                "depth_file": depth,
                "instance_file": panoptic,
                "instance_format": "cityscapes_dvps",
                "image_id": os.path.basename(prefix),
            }
        )
    records = _keep_checked(candidates, excluded)
    orphans = _unpaired(split_dir, "*_depth.png", lambda p: p[: -len("_depth.png")], images)
    return finalize_records(
        records, excluded + orphans, split_dir, num_candidates=len(images) + len(orphans)
    )


def load_semkitti_dvps(split_dir: str) -> RecordList:
    """SemKITTI-DVPS split folder -> records (sparse depth; focal length from the file name).

    ``<prefix>_leftImg8bit.png``, ``<prefix>_depth_<focal>.png``, ``<prefix>_gtFine_class.png``,
    ``<prefix>_gtFine_instance.png``.
    """
    _require_dir(split_dir, "SemKITTI-DVPS")
    images = sorted(glob.glob(os.path.join(split_dir, "*" + _IMAGE_SUFFIX)))
    candidates, excluded = [], []
    for image in images:
        prefix = image[: -len(_IMAGE_SUFFIX)]
        depths = sorted(glob.glob(glob.escape(prefix) + "_depth_*.png"))
        classes, instances = prefix + "_gtFine_class.png", prefix + "_gtFine_instance.png"
        if len(depths) > 1:  # two focal lengths for one frame: which one is its depth?
            excluded.append((depths[1], f"ambiguous ({len(depths)} depth files: {depths[0]})"))
            continue
        missing = [] if depths else [prefix + "_depth_<focal>.png"]
        missing += [p for p in (classes, instances) if not os.path.isfile(p)]
        if missing:
            excluded.append((missing[0], "file not found"))
            continue
        candidates.append(
            {
                "file_name": image,
                "depth_file": depths[0],
                "focal": focal_from_depth_name(depths[0]),
                "class_file": classes,
                "instance_file": instances,
                "instance_format": "semkitti_dvps",
                "image_id": os.path.basename(prefix),
            }
        )
    records = _keep_checked(candidates, excluded)
    orphans = _unpaired(split_dir, "*_depth_*.png", lambda p: p[: p.rindex("_depth_")], images)
    return finalize_records(
        records, excluded + orphans, split_dir, num_candidates=len(images) + len(orphans)
    )


def load_kitti_eigen(
    kitti_root: str, split_file: str, instance_dir: Optional[str] = None
) -> RecordList:
    """KITTI Eigen split -> records.

    Args:
        kitti_root: holds ``raw/`` (KITTI raw, ``<date>/<drive>/image_02/data/*.png``) and
            ``depth/`` (annotated depth; ``<drive>/proj_depth/groundtruth/image_02/*.png``, or
            the official ``train/`` and ``val/`` folders under it).
        split_file: lines ``<image rel path> <depth rel path or None> <focal>`` (BTS format).
        instance_dir: pseudo instance masks from any instance segmenter, one id PNG per image at
            ``<instance_dir>/<image rel path>`` (0 = background). Images without one train with
            SI_log only.
    """
    if not os.path.isfile(split_file):
        raise FileNotFoundError(f"KITTI split file {split_file} not found")
    raw, depth_root = os.path.join(kitti_root, "raw"), os.path.join(kitti_root, "depth")
    candidates, excluded, first_line, no_mask = [], [], {}, 0
    with open(split_file) as f:
        lines = [(n, line.split()) for n, line in enumerate(f, 1) if line.strip()]
    for lineno, parts in lines:
        if len(parts) < 2:
            raise ValueError(f"{split_file}:{lineno}: expected '<image> <depth> [focal]'")
        image = os.path.join(raw, parts[0])
        if parts[0] in first_line:
            excluded.append(
                (image, f"duplicate image id (line {lineno} repeats line {first_line[parts[0]]})")
            )
            continue
        first_line[parts[0]] = lineno
        if parts[1] == "None":
            excluded.append((image, "no ground truth ('None' in the split file)"))
            continue
        depth = _first_file(depth_root, parts[1], ("", "train", "val"))
        if not os.path.isfile(image) or depth is None:
            missing = image if not os.path.isfile(image) else os.path.join(depth_root, parts[1])
            excluded.append((missing, "file not found"))
            continue
        record = {
            "file_name": image,
            "depth_file": depth,
            "focal": float(parts[2]) if len(parts) > 2 else None,
            "image_id": parts[0],
        }
        mask = os.path.join(instance_dir, parts[0]) if instance_dir else None
        if mask and os.path.isfile(mask):
            record.update(instance_file=mask, instance_format="instance_png")
        else:
            no_mask += 1
        candidates.append(record)
    records = _keep_checked(candidates, excluded)
    if instance_dir and no_mask:
        logger.warning(
            "%s: %d image(s) have no instance mask in %s", split_file, no_mask, instance_dir
        )
    return finalize_records(records, excluded, split_file, num_candidates=len(lines))


def _first_file(root: str, rel: str, subdirs) -> Optional[str]:
    for sub in subdirs:
        path = os.path.join(root, sub, rel)
        if os.path.isfile(path):
            return path
    return None
