"""Standard monocular-depth metrics, evaluation crops, GT caps and aggregation (numpy only).

Per image we keep every metric and the sums and counts behind it, so that a dataset can be
summarised either way the literature does:

- ``per_image``: each metric computed on each image, then averaged over the images that have
  the pixels it needs (iDisc's and PolyphonicFormer's evaluation code);
- ``pooled``: the dataset's valid pixels taken as one set (what Eigen-style code that
  concatenates all pixels computes).

GT beyond the maximum depth is either dropped (``drop``: valid where min < gt < max) or clamped
to the maximum and kept (``clamp``: valid where gt > min, PolyphonicFormer on Cityscapes-DVPS).
"""

from collections import OrderedDict
from typing import Dict, Optional

import numpy as np

# Fractions of (H, W): rows [top, bottom), cols [left, right).
CROPS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.03594771, 0.96405229),
}
AGGREGATIONS = ("per_image", "pooled")
GT_CAPS = ("drop", "clamp")
METRICS = (
    "abs_rel",
    "sq_rel",
    "rmse",
    "rmse_log",
    "silog",
    "delta1",
    "delta2",
    "delta3",
    "delta1_instance",
    "delta1_background",
)
# Pixel count each metric is taken over.
_COUNT = {"delta1_instance": "n_instance", "delta1_background": "n_background"}


def crop_mask(shape, crop: str) -> np.ndarray:
    """(H, W) bool of the named evaluation crop ("none", "garg", "eigen")."""
    mask = np.zeros(shape, bool)
    if crop in (None, "", "none"):
        mask[:] = True
        return mask
    if crop not in CROPS:
        raise ValueError(f"unknown evaluation crop {crop!r}; use none, garg or eigen")
    h, w = shape
    top, bottom, left, right = CROPS[crop]
    mask[int(top * h) : int(bottom * h), int(left * w) : int(right * w)] = True
    return mask


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; use one of {', '.join(choices)}")


def image_depth_stats(
    pred: np.ndarray,
    gt: np.ndarray,
    instance_mask: Optional[np.ndarray] = None,
    crop: str = "none",
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
    gt_cap: str = "drop",
) -> Dict[str, float]:
    """Sums, counts and metrics of one image.

    Args:
        pred: (H, W) predicted depth, clipped to [min_depth, max_depth].
        gt: (H, W) GT depth, inside the crop; ``gt_cap`` "drop": valid where
            min_depth < gt < max_depth; "clamp": valid where gt > min_depth, values above
            max_depth set to max_depth.
        instance_mask: (H, W) bool, pixels of object instances (Table IV), or None.

    Returns:
        dict with ``n``, ``n_instance``, ``n_background``, ``sum_*`` (pooled aggregation) and
        every metric of :data:`METRICS` for this image (nan without the pixels it needs).
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and GT {gt.shape} differ in size")
    _check_choice("GT cap", gt_cap, GT_CAPS)
    valid = (gt > min_depth) & crop_mask(gt.shape, crop)
    if gt_cap == "drop":
        valid &= gt < max_depth
    p = np.clip(pred[valid].astype(np.float64), min_depth, max_depth)
    g = np.minimum(gt[valid].astype(np.float64), max_depth)
    ratio = np.maximum(g / p, p / g)
    inst = instance_mask[valid] if instance_mask is not None else np.zeros(g.shape, bool)
    d1 = ratio < 1.25
    log_diff = np.log(p) - np.log(g)
    stats = OrderedDict(
        n=int(valid.sum()),
        n_instance=int(inst.sum()),
        n_background=int((~inst).sum()),
        sum_abs_rel=float(np.sum(np.abs(g - p) / g)),
        sum_sq_rel=float(np.sum((g - p) ** 2 / g)),
        sum_sq=float(np.sum((g - p) ** 2)),
        sum_log=float(np.sum(log_diff)),
        sum_log_sq=float(np.sum(log_diff**2)),
        sum_delta1=float(d1.sum()),
        sum_delta2=float((ratio < 1.25**2).sum()),
        sum_delta3=float((ratio < 1.25**3).sum()),
        sum_delta1_instance=float(d1[inst].sum()),
        sum_delta1_background=float(d1[~inst].sum()),
    )
    stats.update(_metrics_from_sums(stats))
    return stats


def _metrics_from_sums(s) -> Dict[str, float]:
    """Every metric of :data:`METRICS` from the sums and counts of one image or of a dataset."""
    out = OrderedDict()
    n = s["n"]
    for name in METRICS:
        count = s[_COUNT.get(name, "n")]
        if not count:
            out[name] = float("nan")
        elif name == "rmse":
            out[name] = float(np.sqrt(s["sum_sq"] / n))
        elif name == "rmse_log":
            out[name] = float(np.sqrt(s["sum_log_sq"] / n))
        elif name == "silog":
            variance = s["sum_log_sq"] / n - (s["sum_log"] / n) ** 2
            out[name] = float(100 * np.sqrt(max(variance, 0.0)))
        else:
            out[name] = s["sum_" + name] / count
    return out


def summarize_depth_stats(rows, aggregation: str = "per_image") -> Dict[str, float]:
    """Dataset metrics from per-image rows of :func:`image_depth_stats`.

    Args:
        rows: per-image dicts.
        aggregation: "per_image" (each metric averaged over the images that have its pixels;
            delta1_instance over images with instance pixels) or "pooled" (all valid pixels of
            the dataset as one set).
    """
    _check_choice("aggregation", aggregation, AGGREGATIONS)
    if aggregation == "pooled":
        keys = [k for k in rows[0] if k.startswith(("n", "sum_"))] if rows else []
        totals = {k: float(sum(r[k] for r in rows)) for k in keys}
        if not totals:
            return OrderedDict((name, float("nan")) for name in METRICS)
        return _metrics_from_sums(totals)
    out = OrderedDict()
    for name in METRICS:
        values = [r[name] for r in rows if r[_COUNT.get(name, "n")]]
        out[name] = float(np.mean(values)) if values else float("nan")
    return out
