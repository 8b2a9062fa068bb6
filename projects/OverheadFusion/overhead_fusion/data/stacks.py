"""Real image stacks: K co-registered images of one location, no synthetic artifacts.

Layout, one folder per location::

    <root>/<location>/view_<anything>.<png|tif|tiff|jpg|jpeg>   K >= 1 views, same size
    <root>/<location>/label.<ext>                                optional colour label
    <root>/<location>/clean.<ext>                                optional reference image (L1)

Views are taken in name order. A location whose files cannot be read or differ in size is left
out, with its file and reason in the records' load report.
"""

import os
from typing import List, Optional

import cv2
import numpy as np

from d2common.data.validation import (
    BadSampleError,
    RecordList,
    check_same_size,
    finalize_records,
    read_image_checked,
    read_image_size,
)

from .label_formats import IGNORE_LABEL, LABEL_FORMATS, decode_color_label, label_unknown_fraction
from .loaders import IMAGE_EXTENSIONS, nodata_mask

__all__ = ["load_image_stacks", "read_stack", "register_stack_entries", "stack_files"]

VIEW_PREFIX = "view"


def stack_files(folder: str):
    """(view paths in name order, label path or None, clean path or None) of one location."""
    views, label, clean = [], None, None
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        path = os.path.join(folder, name)
        if stem.startswith(VIEW_PREFIX):
            views.append(path)
        elif stem == "label":
            label = path
        elif stem == "clean":
            clean = path
    return views, label, clean


def _check_stack(views, label, clean, fmt, full_decode):
    read = (lambda p: read_image_checked(p, format="RGB").shape[:2]) if full_decode else None
    size = read or read_image_size
    first = size(views[0])
    for path in views[1:] + [p for p in (clean,) if p]:
        check_same_size(first, size(path), views[0], path)
    if label:
        if full_decode:
            rgb = read_image_checked(label, format="RGB")
            check_same_size(first, rgb.shape[:2], views[0], label)
            label_unknown_fraction(rgb, fmt, label)
        else:
            check_same_size(first, read_image_size(label), views[0], label)


def load_image_stacks(
    root: str, label_format: Optional[str] = None, full_decode: bool = True
) -> RecordList:
    """Dataset dicts of the image stacks under ``root`` (layout: module docstring).

    Args:
        label_format: a key of LABEL_FORMATS for the ``label`` images; a location without one is
            then left out. None: an unlabelled dataset (labels ignored).
        full_decode: decode every file at load (evaluation); False reads headers only.

    Returns:
        records with "file_name" (the first view), "view_files", "image_id" (the location),
        and "sem_seg_file_name" / "clean_file_name" / "label_format" when present.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image stack folder {root} does not exist")
    fmt = LABEL_FORMATS[label_format] if label_format else None
    records, excluded = [], []
    for location in sorted(os.listdir(root)):
        folder = os.path.join(root, location)
        if not os.path.isdir(folder):
            continue
        views, label, clean = stack_files(folder)
        if not views:
            excluded.append((folder, f"no {VIEW_PREFIX}_* image"))
            continue
        if fmt and not label:
            excluded.append((folder, "no label image (a labelled dataset needs one everywhere)"))
            continue
        try:
            _check_stack(views, label if fmt else None, clean, fmt, full_decode)
        except BadSampleError as e:
            excluded.append((e.path, e.reason))
            continue
        record = {"file_name": views[0], "view_files": views, "image_id": location}
        if label and fmt:
            record.update(sem_seg_file_name=label, label_format=label_format)
        if clean:
            record["clean_file_name"] = clean
        records.append(record)
    out = finalize_records(records, excluded, root)
    if not records:
        raise FileNotFoundError(f"no usable image stacks in {root}: {out.load_report.summary()}")
    return out


def read_stack(record: dict, size: int, nodata_color=None):
    """Reads a stack record resized to ``size`` x ``size``.

    Returns:
        views (V, size, size, 3) uint8 RGB; labels (size, size) uint8 or None; clean
        (size, size, 3) uint8 or None. Pixels of ``nodata_color`` in every view get the ignore
        label.

    Raises:
        BadSampleError: naming the file at fault.
    """
    raw = [read_image_checked(p, format="RGB") for p in record["view_files"]]
    for path, image in zip(record["view_files"][1:], raw[1:]):
        check_same_size(raw[0].shape, image.shape, record["view_files"][0], path)

    def resize(image, interp=cv2.INTER_AREA):
        return cv2.resize(image, (size, size), interpolation=interp)

    labels = None
    if "sem_seg_file_name" in record:
        rgb = read_image_checked(record["sem_seg_file_name"], format="RGB")
        check_same_size(
            raw[0].shape, rgb.shape, record["view_files"][0], record["sem_seg_file_name"]
        )
        fmt = LABEL_FORMATS[record.get("label_format", "city_osm")]
        ids = decode_color_label(rgb, fmt)
        if nodata_color is not None:
            nodata = np.all([nodata_mask(v, nodata_color) for v in raw], axis=0)
            ids[nodata] = IGNORE_LABEL
        labels = resize(ids, cv2.INTER_NEAREST)
    clean = None
    if "clean_file_name" in record:
        clean = resize(read_image_checked(record["clean_file_name"], format="RGB"))
    return np.stack([resize(v) for v in raw]), labels, clean


def register_stack_entries(entries) -> List[str]:
    """Registers INPUT.OVERHEAD_FUSION.STACK_DATASETS entries ``"NAME:ROOT[:LABEL_FORMAT]"``."""
    from d2common.data import register_dataset_once

    from .builtin import _metadata

    names = []
    for entry in entries:
        parts = str(entry).split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(
                'INPUT.OVERHEAD_FUSION.STACK_DATASETS entries are "NAME:ROOT[:LABEL_FORMAT]", '
                f'got "{entry}"'
            )
        name, root = parts[:2]
        fmt = parts[2] if len(parts) == 3 else None
        if fmt is not None and fmt not in LABEL_FORMATS:
            raise ValueError(f"STACK_DATASETS {name}: unknown label format {fmt}")
        full = not name.endswith("_train")
        if fmt:
            meta = _metadata(fmt, image_root=root)
        else:  # unlabelled: no classes to check a config against
            meta = dict(
                ignore_label=IGNORE_LABEL, evaluator_type="overhead_fusion", image_root=root
            )
        register_dataset_once(
            name, lambda r=root, f=fmt, d=full: load_image_stacks(r, f, d), **meta
        )
        names.append(name)
    return names
