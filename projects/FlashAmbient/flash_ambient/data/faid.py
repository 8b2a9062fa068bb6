"""FAID (Aksoy et al. 2018) flash / ambient pairs in detectron2's dataset-dict format.

On disk: ``<Category>_<id>_flash.png`` and ``<Category>_<id>_ambient.png`` anywhere under an
image folder (flat or one folder per category), plus optional split files listing one pair per
line (``People_014``, or either file name of the pair).
"""

import logging
import os
import re
from collections import defaultdict
from typing import Dict, List, Optional

from PIL import Image

logger = logging.getLogger(__name__)

_PAIR_FILE = re.compile(r"^(?P<pair>(?P<category>.+?)_(?P<id>\d+))_(?P<kind>flash|ambient)$", re.I)
_IMAGE_EXTS = (".png", ".jpg", ".jpeg")


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


def _image_size(path: str):
    """(width, height) from the file header, or None when the file is not a readable image."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, SyntaxError, ValueError):
        return None


def find_pairs(image_dir: str) -> Dict[str, Dict[str, str]]:
    """Scans ``image_dir`` recursively: pair name -> {"flash": path, "ambient": path, "category"}.

    Only complete pairs are returned; unpaired files are reported with a warning and a count.
    """
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(
            f"FAID image folder {image_dir} not found: expected <Category>_<id>_flash.png / "
            "<Category>_<id>_ambient.png files under it (see datasets/README.md)"
        )
    found = defaultdict(dict)
    for dirpath, _, filenames in os.walk(image_dir):
        for fn in filenames:
            stem, ext = os.path.splitext(fn)
            match = _PAIR_FILE.match(stem)
            if ext.lower() not in _IMAGE_EXTS or not match:
                continue
            entry = found[match.group("pair")]
            entry["category"] = match.group("category")
            entry[match.group("kind").lower()] = os.path.join(dirpath, fn)
    unpaired = sorted(p for p, e in found.items() if not ("flash" in e and "ambient" in e))
    if unpaired:
        logger.warning(
            "%s: skipping %d unpaired file(s) (flash without ambient or vice versa), e.g. %s",
            image_dir,
            len(unpaired),
            ", ".join(unpaired[:5]),
        )
    return {p: e for p, e in sorted(found.items()) if p not in set(unpaired)}


def load_faid_pairs(image_dir: str, split_file: Optional[str] = None) -> List[dict]:
    """Dataset dicts of the FAID pairs under ``image_dir`` (restricted to ``split_file``).

    Each dict: ``file_name`` (flash image, the input), ``ambient_file_name`` (the target),
    ``image_id`` (pair name), ``category``, ``height`` / ``width`` (of the flash file).
    Unreadable images and split entries without files are skipped with a warning and a count.
    """
    pairs = find_pairs(image_dir)
    names = list(pairs)
    if split_file is not None:
        wanted = read_split_file(split_file)
        missing = [n for n in wanted if n not in pairs]
        if missing:
            logger.warning(
                "%s: %d listed pair(s) not found under %s, e.g. %s",
                split_file,
                len(missing),
                image_dir,
                ", ".join(missing[:5]),
            )
        names = [n for n in dict.fromkeys(wanted) if n in pairs]
    dicts, unreadable = [], []
    for name in names:
        entry = pairs[name]
        size = _image_size(entry["flash"])
        if size is None or _image_size(entry["ambient"]) is None:
            unreadable.append(name)
            continue
        dicts.append(
            {
                "file_name": entry["flash"],
                "ambient_file_name": entry["ambient"],
                "image_id": name,
                "category": entry["category"],
                "width": size[0],
                "height": size[1],
            }
        )
    if unreadable:
        logger.warning(
            "%s: skipping %d pair(s) with unreadable images, e.g. %s",
            image_dir,
            len(unreadable),
            ", ".join(unreadable[:5]),
        )
    if not dicts:
        raise RuntimeError(
            f"No usable flash / ambient pairs under {image_dir} (split {split_file})"
        )
    logger.info("Loaded %d flash / ambient pairs from %s", len(dicts), image_dir)
    return dicts
