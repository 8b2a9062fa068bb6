"""Readers of the on-disk depth and instance formats (numpy / OpenCV only)."""

import os
import re
from typing import Optional

import cv2
import numpy as np

# Depth PNGs of KITTI, Cityscapes-DVPS and SemKITTI-DVPS: uint16, metres * 256, 0 = invalid.
DEPTH_SCALE = 256.0
# Cityscapes-DVPS panoptic labels: trainId * 1000 + instance id for "thing" pixels.
PANOPTIC_DIVISOR = 1000
_FOCAL_RE = re.compile(r"_depth_(\d+(?:\.\d+)?)\.png$")


class CorruptFileError(ValueError):
    """A dataset file that exists but cannot be read as the expected format."""


def _read_unchanged(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise CorruptFileError(f"{path}: not a readable image")
    return image


def read_depth_png(path: str, scale: float = DEPTH_SCALE) -> np.ndarray:
    """uint16 depth PNG -> (H, W) float32 metres (0 where invalid)."""
    raw = _read_unchanged(path)
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise CorruptFileError(
            f"{path}: depth PNG must be single-channel uint16 (depth * {scale:g}), "
            f"got {raw.dtype} with shape {raw.shape}"
        )
    return raw.astype(np.float32) / scale


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """(H, W) ints with 0 = none -> int32 ids 1..M in order of the original values."""
    values = np.unique(labels)
    values = values[values != 0]
    out = np.zeros(labels.shape, np.int32)
    if values.size:
        inside = labels != 0
        out[inside] = np.searchsorted(values, labels[inside]) + 1
    return out


def read_cityscapes_dvps_instances(path: str) -> np.ndarray:
    """``*_gtFine_instanceTrainIds.png`` (trainId * 1000 + instance) -> instance ids 1..M.

    Pixels of "stuff" classes (value < 1000), of thing pixels without an instance (value % 1000
    == 0) and ignore labels become 0.
    """
    raw = _read_unchanged(path)
    if raw.ndim != 2:
        raise CorruptFileError(f"{path}: panoptic PNG must be single-channel, got {raw.shape}")
    raw = raw.astype(np.int64)
    things = (raw >= PANOPTIC_DIVISOR) & (raw % PANOPTIC_DIVISOR != 0)
    return relabel_consecutive(np.where(things, raw, 0))


def read_semkitti_dvps_instances(class_path: str, instance_path: str) -> np.ndarray:
    """``*_gtFine_class.png`` + ``*_gtFine_instance.png`` -> instance ids 1..M.

    An instance is a (class, instance id) pair with instance id > 0.
    """
    classes = _read_unchanged(class_path)
    instances = _read_unchanged(instance_path)
    if classes.shape != instances.shape or classes.ndim != 2:
        raise CorruptFileError(
            f"{instance_path}: shape {instances.shape} does not match {class_path} {classes.shape}"
        )
    instances = instances.astype(np.int64)
    combined = classes.astype(np.int64) * 65536 + instances
    return relabel_consecutive(np.where(instances > 0, combined, 0))


def read_instance_png(path: str) -> np.ndarray:
    """A plain instance-id PNG (uint8 / uint16, 0 = background), e.g. pseudo masks for KITTI."""
    raw = _read_unchanged(path)
    if raw.ndim == 3:
        raise CorruptFileError(f"{path}: instance PNG must be single-channel ids, got {raw.shape}")
    return relabel_consecutive(raw.astype(np.int64))


def read_instances(record: dict) -> Optional[np.ndarray]:
    """The instance id map of a dataset record, or None if it has no instance annotation."""
    kind = record.get("instance_format")
    if not kind:
        return None
    if kind == "cityscapes_dvps":
        return read_cityscapes_dvps_instances(record["instance_file"])
    if kind == "semkitti_dvps":
        return read_semkitti_dvps_instances(record["class_file"], record["instance_file"])
    if kind == "instance_png":
        return read_instance_png(record["instance_file"])
    raise ValueError(f"{record.get('file_name')}: unknown instance_format {kind!r}")


def focal_from_depth_name(path: str) -> Optional[float]:
    """SemKITTI-DVPS depth files carry the focal length: ``*_depth_718.856.png`` -> 718.856."""
    match = _FOCAL_RE.search(os.path.basename(path))
    return float(match.group(1)) if match else None
