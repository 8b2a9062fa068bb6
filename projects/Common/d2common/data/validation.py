"""Decode-and-validate helpers used by every loader, mapper and prepare script.

Nothing here imports torch or detectron2, so prepare scripts start fast. The rules:

- ``read_image_checked`` fully decodes a file (a header read lets truncated files through) and
  raises :class:`BadSampleError` naming the file for a missing, empty, truncated, corrupt or too
  small image; EXIF orientation is applied.
- Loaders drop records that cannot be used and say why: :func:`finalize_records` returns the kept
  records as a :class:`RecordList` that carries a :class:`LoadReport` (how many candidates, which
  were excluded and why). Evaluators read that report back and score exactly the kept records.
- Mappers call :meth:`SampleSkipper.skip_or_raise`: in training a bad sample is skipped, warned
  about and counted; in testing the run stops with the error, so no sample is ever replaced by
  another one.
"""

import logging
import os
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

_PIL_LOCK = threading.Lock()


class BadSampleError(ValueError):
    """A sample that cannot be used; ``path`` names the file, ``reason`` says why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def read_image_checked(
    path: str,
    format: Optional[str] = None,
    min_size: Optional[Tuple[int, int]] = None,
    apply_exif: bool = True,
) -> np.ndarray:
    """Fully decodes an image file and checks it.

    Args:
        path: the image file.
        format: ``"RGB"``, ``"BGR"``, ``"L"`` (8-bit grey) or None (the file's own mode, e.g. a
            16-bit PNG stays uint16, a palette PNG gives its indices).
        min_size: (min_height, min_width) the pipeline needs.
        apply_exif: rotate / flip by the EXIF orientation tag (JPEGs from cameras).

    Returns:
        (H, W, 3) uint8 for RGB / BGR, (H, W) for ``"L"`` and single-channel files.

    Raises:
        BadSampleError: missing, empty, truncated, corrupt or too small.
    """
    from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

    if not os.path.isfile(path):
        raise BadSampleError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise BadSampleError(path, "empty file")
    try:
        with _PIL_LOCK:
            # A library elsewhere may have switched this on; a truncated file must fail here.
            previous = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            try:
                with Image.open(path) as img:
                    img.load()
                    if apply_exif:
                        img = ImageOps.exif_transpose(img)
                    array = _pil_to_numpy(img, format)
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous
    except UnidentifiedImageError as e:
        raise BadSampleError(path, f"not a readable image ({e})") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise BadSampleError(path, f"truncated or corrupt image ({e})") from e
    if min_size is not None:
        h, w = array.shape[:2]
        if h < min_size[0] or w < min_size[1]:
            need = f"{min_size[0]}x{min_size[1]}"
            raise BadSampleError(path, f"image of size {h}x{w} is too small (needs {need})")
    return array


def read_image_size(path: str, min_size: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """(height, width) of an image as displayed (EXIF rotation applied), from its header only.

    The cheap check of large training sets: it finds missing, empty, unidentifiable and too small
    files and sizes that disagree, but not a truncated file (that needs ``read_image_checked``).

    Raises:
        BadSampleError: missing, empty, unreadable header, or smaller than ``min_size``.
    """
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise BadSampleError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise BadSampleError(path, "empty file")
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = 1
            # A PNG's EXIF may follow the pixel data: reading it there would decode the file.
            if img.format != "PNG" or "exif" in img.info:
                orientation = img.getexif().get(0x0112, 1)  # EXIF Orientation tag
    except UnidentifiedImageError as e:
        raise BadSampleError(path, f"not a readable image ({e})") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise BadSampleError(path, f"truncated or corrupt image ({e})") from e
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees
        width, height = height, width
    if min_size is not None and (height < min_size[0] or width < min_size[1]):
        need = f"{min_size[0]}x{min_size[1]}"
        raise BadSampleError(path, f"image of size {height}x{width} is too small (needs {need})")
    return height, width


def _pil_to_numpy(img, format: Optional[str]) -> np.ndarray:
    if format in ("RGB", "BGR"):
        array = np.asarray(img.convert("RGB"))
        return np.ascontiguousarray(array[:, :, ::-1]) if format == "BGR" else array.copy()
    if format == "L":
        return np.asarray(img.convert("L")).copy()
    if format is not None:
        raise ValueError(f"Unknown image format {format!r}: use RGB, BGR, L or None")
    if img.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(img, dtype=np.uint16).copy()
    return np.asarray(img).copy()


def check_same_size(
    image_shape: Sequence[int], label_shape: Sequence[int], image_path: str, label_path: str
) -> None:
    """Raises :class:`BadSampleError` when an image and its label differ in height or width."""
    if tuple(image_shape[:2]) != tuple(label_shape[:2]):
        raise BadSampleError(
            label_path,
            f"label of size {label_shape[0]}x{label_shape[1]} does not match its image "
            f"{image_path} of size {image_shape[0]}x{image_shape[1]}",
        )


def unknown_value_fraction(
    label: np.ndarray, allowed: Iterable, path: str, *, max_fraction: float = 0.0
) -> float:
    """Fraction of ``label`` pixels whose value is not in ``allowed``; warns when there are any.

    Args:
        label: (H, W) integer label map, or (H, W, C) colour label (values compared per pixel).
        allowed: the allowed values (integers, or colour tuples for an (H, W, C) label).
        path: the label file, for messages.
        max_fraction: a larger fraction raises :class:`BadSampleError`.
    """
    if label.ndim == 3:
        flat = label.reshape(-1, label.shape[-1])
        allowed_rows = np.asarray([tuple(a) for a in allowed], dtype=flat.dtype)
        known = (flat[:, None, :] == allowed_rows[None]).all(-1).any(-1)
    else:
        known = np.isin(label, np.asarray(list(allowed)))
    fraction = float(1.0 - known.mean()) if known.size else 0.0
    if fraction > 0:
        message = f"{100 * fraction:.3g}% of the pixels have a value outside the label table"
        if fraction > max_fraction:
            raise BadSampleError(path, message)
        logger.warning("%s: %s", path, message)
    return fraction


def duplicate_keys(keys_and_paths: Iterable[Tuple[str, str]]) -> Dict[str, List[str]]:
    """``{key: [path, path, ...]}`` for every key that occurs more than once."""
    seen: Dict[str, List[str]] = OrderedDict()
    for key, path in keys_and_paths:
        seen.setdefault(key, []).append(path)
    return OrderedDict((k, v) for k, v in seen.items() if len(v) > 1)


def check_unique_keys(keys_and_paths: Iterable[Tuple[str, str]], what: str = "sample") -> None:
    """Raises ``ValueError`` naming the files when two samples share a key (e.g. a pair name)."""
    dups = duplicate_keys(keys_and_paths)
    if dups:
        lines = [f"  {k}: {', '.join(v)}" for k, v in list(dups.items())[:10]]
        raise ValueError(
            f"{len(dups)} duplicate {what} name(s): one would silently replace the other. "
            "Rename or remove them:\n" + "\n".join(lines)
        )


@dataclass
class LoadReport:
    """What a loader did: ``num_candidates`` found, ``excluded`` as (file, reason) pairs."""

    source: str
    num_candidates: int
    excluded: List[Tuple[str, str]] = field(default_factory=list)
    # Keys of the kept records (``image_id``, else ``file_name``), filled in at registration.
    record_ids: Optional[List[str]] = None

    @property
    def num_loaded(self) -> int:
        return self.num_candidates - len(self.excluded)

    def reason_counts(self) -> "Counter[str]":
        return Counter(_reason_kind(r) for _, r in self.excluded)

    def summary(self) -> str:
        """``"loaded N of M records; K excluded: reason (count), ..."``."""
        text = f"loaded {self.num_loaded} of {self.num_candidates} records"
        if self.excluded:
            reasons = ", ".join(f"{r} ({n})" for r, n in self.reason_counts().most_common())
            text += f"; {len(self.excluded)} excluded: {reasons}"
        return text


def _reason_kind(reason: str) -> str:
    # "truncated or corrupt image (image file is truncated ...)" -> "truncated or corrupt image"
    return reason.split(" (", 1)[0]


class RecordList(list):
    """A list of dataset dicts that also carries the :class:`LoadReport` of its loader."""

    load_report: Optional[LoadReport] = None


def finalize_records(
    records: List[dict], excluded: List[Tuple[str, str]], source: str, num_candidates: int = None
) -> RecordList:
    """Wraps a loader's kept records with its report and logs the exclusions.

    Args:
        records: the kept dataset dicts.
        excluded: (file, reason) of every candidate left out.
        source: the folder or file the records came from, for messages.
        num_candidates: records considered (default: kept + excluded).
    """
    out = RecordList(records)
    total = len(records) + len(excluded) if num_candidates is None else num_candidates
    out.load_report = LoadReport(source=source, num_candidates=total, excluded=list(excluded))
    if excluded:
        examples = "; ".join(f"{p}: {r}" for p, r in excluded[:5])
        logger.warning("%s: %s. E.g. %s", source, out.load_report.summary(), examples)
    return out


def validate_records(records: List[dict], check: Callable[[dict], None], source: str) -> RecordList:
    """Keeps the records for which ``check(record)`` does not raise :class:`BadSampleError`."""
    kept, excluded = [], []
    for record in records:
        try:
            check(record)
        except BadSampleError as e:
            excluded.append((e.path, e.reason))
            continue
        kept.append(record)
    return finalize_records(kept, excluded, source, num_candidates=len(records))


class SampleSkipper:
    """A mapper's policy for a sample that fails at read time.

    Training: warn, count, and return None (detectron2's loader then draws another sample).
    Testing: raise, so that an evaluation never scores a substitute.
    """

    def __init__(self, is_train: bool, what: str = "sample"):
        self.is_train = is_train
        self.what = what
        self.num_skipped = 0
        self.reasons: "Counter[str]" = Counter()

    def skip_or_raise(self, error: BadSampleError) -> None:
        """Returns None in training (after a warning and a count); raises in testing."""
        if not self.is_train:
            raise BadSampleError(
                error.path, f"{error.reason}; an evaluation cannot skip or replace a {self.what}"
            ) from error
        self.num_skipped += 1
        self.reasons[_reason_kind(error.reason)] += 1
        logger.warning(
            "Skipping %s %s (%s); %d skipped so far",
            self.what,
            error.path,
            error.reason,
            self.num_skipped,
        )
        return None
