"""Dataset-dict loaders of KITTI (Eigen split), Cityscapes-DVPS and SemKITTI-DVPS.

Records carry paths only (no pixels): ``file_name``, ``depth_file``, ``image_id``, and when the
dataset has instances ``instance_format`` + ``instance_file`` (+ ``class_file``). Unpaired files
are skipped with one warning that counts them.
"""

import glob
import logging
import os
from typing import List, Optional

from .formats import focal_from_depth_name

logger = logging.getLogger(__name__)

_IMAGE_SUFFIX = "_leftImg8bit.png"


def _require_dir(path: str, what: str) -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"{what}: directory {path} not found (see datasets/README.md for the "
            "expected tree under $DETECTRON2_DATASETS)"
        )


def _warn_skipped(skipped: List[str], where: str, why: str) -> None:
    if skipped:
        logger.warning("%s: skipped %d image(s) %s, e.g. %s", where, len(skipped), why, skipped[0])


def load_cityscapes_dvps(split_dir: str) -> List[dict]:
    """Cityscapes-DVPS split folder (``video_sequence/<split>``) -> records.

    Triplets ``<prefix>_leftImg8bit.png``, ``<prefix>_depth.png``,
    ``<prefix>_gtFine_instanceTrainIds.png``.
    """
    _require_dir(split_dir, "Cityscapes-DVPS")
    records, skipped = [], []
    for image in sorted(glob.glob(os.path.join(split_dir, "*" + _IMAGE_SUFFIX))):
        prefix = image[: -len(_IMAGE_SUFFIX)]
        depth, panoptic = prefix + "_depth.png", prefix + "_gtFine_instanceTrainIds.png"
        if not (os.path.isfile(depth) and os.path.isfile(panoptic)):
            skipped.append(image)
            continue
        records.append(
            {
                "file_name": image,
                "depth_file": depth,
                "instance_file": panoptic,
                "instance_format": "cityscapes_dvps",
                "image_id": os.path.basename(prefix),
            }
        )
    _warn_skipped(skipped, split_dir, "without a depth or instanceTrainIds file")
    return records


def load_semkitti_dvps(split_dir: str) -> List[dict]:
    """SemKITTI-DVPS split folder -> records (sparse depth; focal length from the file name).

    ``<prefix>_leftImg8bit.png``, ``<prefix>_depth_<focal>.png``, ``<prefix>_gtFine_class.png``,
    ``<prefix>_gtFine_instance.png``.
    """
    _require_dir(split_dir, "SemKITTI-DVPS")
    records, skipped = [], []
    for image in sorted(glob.glob(os.path.join(split_dir, "*" + _IMAGE_SUFFIX))):
        prefix = image[: -len(_IMAGE_SUFFIX)]
        depths = sorted(glob.glob(glob.escape(prefix) + "_depth_*.png"))
        classes, instances = prefix + "_gtFine_class.png", prefix + "_gtFine_instance.png"
        if len(depths) != 1 or not (os.path.isfile(classes) and os.path.isfile(instances)):
            skipped.append(image)
            continue
        records.append(
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
    _warn_skipped(skipped, split_dir, "without exactly one depth file or class/instance files")
    return records


def load_kitti_eigen(
    kitti_root: str, split_file: str, instance_dir: Optional[str] = None
) -> List[dict]:
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
    records, no_gt, missing, no_mask = [], [], [], 0
    with open(split_file) as f:
        lines = [line.split() for line in f if line.strip()]
    for lineno, parts in enumerate(lines, 1):
        if len(parts) < 2:
            raise ValueError(f"{split_file}:{lineno}: expected '<image> <depth> [focal]'")
        image = os.path.join(raw, parts[0])
        if parts[1] == "None":
            no_gt.append(image)
            continue
        depth = _first_file(depth_root, parts[1], ("", "train", "val"))
        if depth is None or not os.path.isfile(image):
            missing.append(image)
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
        records.append(record)
    _warn_skipped(no_gt, split_file, "with no ground truth ('None')")
    _warn_skipped(missing, split_file, "whose image or depth file is missing")
    if instance_dir and no_mask:
        logger.warning(
            "%s: %d image(s) have no instance mask in %s", split_file, no_mask, instance_dir
        )
    return records


def _first_file(root: str, rel: str, subdirs) -> Optional[str]:
    for sub in subdirs:
        path = os.path.join(root, sub, rel)
        if os.path.isfile(path):
            return path
    return None
