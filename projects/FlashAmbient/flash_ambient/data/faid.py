"""FAID (Aksoy et al. 2018) flash / ambient pairs in detectron2's dataset-dict format.

On disk: ``<Category>_<id>_flash.png`` and ``<Category>_<id>_ambient.png`` anywhere under an
image folder (flat or one folder per category), plus optional split files listing one pair per
line (``People_014``, or either file name of the pair).

Loading never lets a bad pair through silently: a pair name found twice fails with both paths;
unpaired files, split entries without files, unreadable, too small and mismatched pairs are left
out and listed with their reason in the :class:`~d2common.data.validation.LoadReport` of the
returned records (so an evaluation says "evaluated N of M records; K excluded: ...").
"""

import logging
import os
import re
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

from d2common.data.validation import (
    BadSampleError,
    RecordList,
    check_unique_keys,
    finalize_records,
    read_image_checked,
    read_image_size,
)

logger = logging.getLogger(__name__)

_PAIR_FILE = re.compile(r"^(?P<pair>(?P<category>.+?)_(?P<id>\d+))_(?P<kind>flash|ambient)$", re.I)
_IMAGE_EXTS = (".png", ".jpg", ".jpeg")
# The generators halve the resolution four times (VGG-16's pool1-4, the SID U-Net's 4 poolings):
# a smaller side has nothing left to pool, and a smaller photograph is no flash / ambient pair.
MIN_IMAGE_SIZE = (16, 16)


def pair_name(entry: str) -> str:
    """``People_014``, ``People_014_flash.png`` or ``x/People_014_ambient.png`` -> the pair name."""
    stem = os.path.splitext(os.path.basename(entry.strip()))[0]
    match = _PAIR_FILE.match(stem)
    return match.group("pair") if match else stem


def read_split_file(path: str) -> List[str]:
    """Pair names listed in a split file (blank lines and ``#`` comments ignored)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"FAID split file {path} not found: list one pair per line (e.g. 'People_014'), or "
            "create it with datasets/prepare_flash_ambient_faid.py"
        )
    with open(path) as f:
        lines = [ln.split("#", 1)[0].strip() for ln in f]
    return [pair_name(ln) for ln in lines if ln]


def _scan(image_dir: str) -> Tuple[Dict[str, Dict[str, str]], Dict[str, Dict[str, str]]]:
    """(complete pairs, unpaired entries), each pair name -> {"flash", "ambient", "category"}."""
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(
            f"FAID image folder {image_dir} not found: expected <Category>_<id>_flash.png / "
            "<Category>_<id>_ambient.png files under it (see datasets/README.md)"
        )
    files = []
    for dirpath, dirnames, filenames in os.walk(image_dir):
        dirnames.sort()
        for fn in sorted(filenames):
            stem, ext = os.path.splitext(fn)
            match = _PAIR_FILE.match(stem)
            if ext.lower() in _IMAGE_EXTS and match:
                files.append((match, os.path.join(dirpath, fn)))
    # Two People_014_flash files (two folders, or .png and .jpg) would pair a flash with the
    # wrong ambient image: refuse rather than pick one.
    check_unique_keys(
        ((f"{m.group('pair')}_{m.group('kind').lower()}", p) for m, p in files), "FAID image"
    )
    found = defaultdict(dict)
    for match, path in files:
        entry = found[match.group("pair")]
        entry["category"] = match.group("category")
        entry[match.group("kind").lower()] = path
    complete = {p: e for p, e in sorted(found.items()) if "flash" in e and "ambient" in e}
    unpaired = {p: e for p, e in sorted(found.items()) if p not in complete}
    return complete, unpaired


def find_pairs(image_dir: str) -> Dict[str, Dict[str, str]]:
    """Scans ``image_dir`` recursively: pair name -> {"flash": path, "ambient": path, "category"}.

    Only complete pairs are returned; unpaired files are reported with a warning and a count.

    Raises:
        ValueError: a pair name occurs twice (both paths named).
    """
    pairs, unpaired = _scan(image_dir)
    if unpaired:
        logger.warning(
            "%s: skipping %d unpaired file(s) (flash without ambient or vice versa), e.g. %s",
            image_dir,
            len(unpaired),
            ", ".join(list(unpaired)[:5]),
        )
    return pairs


def _unpaired_reason(entry: Dict[str, str]) -> Tuple[str, str]:
    if "flash" in entry:
        return entry["flash"], "unpaired: no ambient image"
    return entry["ambient"], "unpaired: no flash image"


def check_pair_sizes(flash_hw, ambient_hw, flash_path: str, ambient_path: str) -> None:
    """Raises :class:`BadSampleError` when the two images of a pair differ in size.

    The pair is one photograph under two illuminations; different sizes or orientations mean
    files that do not belong together (or a rotated copy), which a resize would hide.
    """
    if tuple(flash_hw[:2]) != tuple(ambient_hw[:2]):
        raise BadSampleError(
            ambient_path,
            f"ambient image of size {ambient_hw[0]}x{ambient_hw[1]} does not match its flash "
            f"image {flash_path} of size {flash_hw[0]}x{flash_hw[1]}",
        )


def check_pair(entry: Dict[str, str], full_decode: bool, min_size=MIN_IMAGE_SIZE):
    """Validates one pair; returns the (height, width) of its flash image.

    Args:
        entry: {"flash": path, "ambient": path}.
        full_decode: decode both images completely (finds truncated files); otherwise only their
            headers are read (size, orientation, readable format).
        min_size: (min_height, min_width).

    Raises:
        BadSampleError: naming the file at fault.
    """
    sizes = []
    for kind in ("flash", "ambient"):
        path = entry[kind]
        if full_decode:
            sizes.append(read_image_checked(path, format="RGB", min_size=min_size).shape[:2])
        else:
            sizes.append(read_image_size(path, min_size=min_size))
    check_pair_sizes(sizes[0], sizes[1], entry["flash"], entry["ambient"])
    return sizes[0]


def load_faid_pairs(
    image_dir: str,
    split_file: Optional[str] = None,
    *,
    full_decode: bool = True,
    min_size: Tuple[int, int] = MIN_IMAGE_SIZE,
) -> RecordList:
    """Dataset dicts of the FAID pairs under ``image_dir`` (restricted to ``split_file``).

    Each dict: ``file_name`` (flash image, the input), ``ambient_file_name`` (the target),
    ``image_id`` (pair name), ``category``, ``height`` / ``width`` (of the flash file).

    Args:
        image_dir: folder searched recursively for ``<Category>_<id>_{flash,ambient}`` images.
        split_file: optional list of pair names; pairs listed there without files are excluded.
        full_decode: decode every image at load (test sets: a truncated file is excluded here
            and never reaches the evaluation). False reads headers only (large training sets:
            the mapper decodes, skips and counts bad files).
        min_size: smallest (height, width) accepted.

    Returns:
        the kept dicts as a ``RecordList`` whose ``load_report`` lists every excluded file with
        its reason (unpaired, listed but not found, unreadable, too small, sizes differ).

    Raises:
        ValueError: two files share a pair name and kind (both paths named).
        RuntimeError: no usable pair at all.
    """
    pairs, unpaired = _scan(image_dir)
    names = list(pairs) + list(unpaired)
    excluded = []
    if split_file is not None:
        wanted = list(dict.fromkeys(read_split_file(split_file)))
        names = [n for n in wanted if n in pairs or n in unpaired]
        missing = [n for n in wanted if n not in names]
        excluded += [
            (f"{split_file}: {n}", f"listed in the split but not found under {image_dir}")
            for n in missing
        ]
    dicts = []
    for name in names:
        if name in unpaired:
            excluded.append(_unpaired_reason(unpaired[name]))
            continue
        entry = pairs[name]
        try:
            height, width = check_pair(entry, full_decode, min_size)
        except BadSampleError as e:
            excluded.append((e.path, e.reason))
            continue
        dicts.append(
            {
                "file_name": entry["flash"],
                "ambient_file_name": entry["ambient"],
                "image_id": name,
                "category": entry["category"],
                "width": int(width),
                "height": int(height),
            }
        )
    num_candidates = len(dicts) + len(excluded)
    records = finalize_records(dicts, excluded, image_dir, num_candidates=num_candidates)
    if not dicts:
        raise RuntimeError(
            f"No usable flash / ambient pairs under {image_dir} (split {split_file}): "
            f"{records.load_report.summary()}"
        )
    logger.info("%s: %s", image_dir, records.load_report.summary())
    return records
