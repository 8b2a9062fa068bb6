"""Readers of the on-disk depth and instance formats (numpy / PIL, no torch).

Every file is fully decoded through :func:`~d2common.data.validation.read_image_checked` (a
truncated PNG fails here instead of reaching training) and every problem raises
:class:`~d2common.data.validation.BadSampleError` naming the file.
"""

import os
import re
from typing import Optional

import numpy as np

from d2common.data.validation import BadSampleError, read_image_checked, unknown_value_fraction

# Depth PNGs of KITTI, Cityscapes-DVPS and SemKITTI-DVPS: uint16, metres * 256, 0 = invalid.
DEPTH_SCALE = 256.0
# Cityscapes-DVPS panoptic labels: trainId * 1000 + instance id for "thing" pixels.
PANOPTIC_DIVISOR = 1000
# Class values of the label tables: train ids 0..18 and the ignore labels (Cityscapes-DVPS
# marks void with 32, SemKITTI-DVPS with 255).
CITYSCAPES_DVPS_CLASSES = tuple(range(19)) + (32, 255)
SEMKITTI_DVPS_CLASSES = tuple(range(19)) + (255,)
# SemKITTI-DVPS "thing" train ids (SemanticKITTI's learning map): car, bicycle, motorcycle, truck,
# other-vehicle, person, bicyclist, motorcyclist. Stuff classes can carry instance ids in the
# files (projected lidar labels); they are not instances.
SEMKITTI_DVPS_THING_CLASSES = tuple(range(8))
_FOCAL_RE = re.compile(r"_depth_(\d+(?:\.\d+)?)\.png$")


class CorruptFileError(BadSampleError):
    """A dataset file that decodes but is not in the expected format (channels, bit depth)."""


def _read_unchanged(path: str) -> np.ndarray:
    # Depth and label PNGs carry no EXIF; their values must come back as stored.
    return read_image_checked(path, format=None, apply_exif=False)


def read_depth_png(path: str, scale: float = DEPTH_SCALE) -> np.ndarray:
    """uint16 depth PNG -> (H, W) float32 metres (0 where invalid)."""
    raw = _read_unchanged(path)
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise CorruptFileError(
            path,
            f"depth PNG must be single-channel uint16 (depth * {scale:g}), "
            f"got {raw.dtype} with shape {raw.shape}",
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
    == 0) and ignore labels become 0. A class outside :data:`CITYSCAPES_DVPS_CLASSES` raises
    :class:`BadSampleError` with the fraction of such pixels.
    """
    raw = _read_unchanged(path)
    if raw.ndim != 2:
        raise CorruptFileError(path, f"panoptic PNG must be single-channel, got {raw.shape}")
    raw = raw.astype(np.int64)
    classes = np.where(raw >= PANOPTIC_DIVISOR, raw // PANOPTIC_DIVISOR, raw)
    unknown_value_fraction(classes, CITYSCAPES_DVPS_CLASSES, path)
    things = (raw >= PANOPTIC_DIVISOR) & (raw % PANOPTIC_DIVISOR != 0)
    return relabel_consecutive(np.where(things, raw, 0))


def read_semkitti_dvps_instances(class_path: str, instance_path: str) -> np.ndarray:
    """``*_gtFine_class.png`` + ``*_gtFine_instance.png`` -> instance ids 1..M.

    An instance is a (class, instance id) pair with instance id > 0 and a class among
    :data:`SEMKITTI_DVPS_THING_CLASSES`; stuff pixels become 0 whatever their instance id. A class
    outside :data:`SEMKITTI_DVPS_CLASSES` raises :class:`BadSampleError` with the fraction of such
    pixels.
    """
    classes = _read_unchanged(class_path)
    instances = _read_unchanged(instance_path)
    if classes.ndim != 2 or instances.ndim != 2:
        raise CorruptFileError(
            instance_path, f"class and instance PNGs must be single-channel ({class_path})"
        )
    if classes.shape != instances.shape:
        raise BadSampleError(
            instance_path,
            f"size mismatch: instance map {instances.shape} vs class map {classes.shape} of "
            f"{class_path}",
        )
    unknown_value_fraction(classes, SEMKITTI_DVPS_CLASSES, class_path)
    instances = instances.astype(np.int64)
    classes = classes.astype(np.int64)
    things = (instances > 0) & np.isin(classes, SEMKITTI_DVPS_THING_CLASSES)
    return relabel_consecutive(np.where(things, classes * 65536 + instances, 0))


def read_instance_png(path: str) -> np.ndarray:
    """A plain instance-id PNG (uint8 / uint16, 0 = background), e.g. pseudo masks for KITTI."""
    raw = _read_unchanged(path)
    if raw.ndim == 3:
        raise CorruptFileError(path, f"instance PNG must be single-channel ids, got {raw.shape}")
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
