"""Standard monocular-depth metrics, evaluation crops and caps (numpy only).

Per image we keep sums and counts, so that pixel-pooled metrics (abs_rel, sq_rel, delta_k, and
delta_1 on instance / background pixels) are exact over a dataset, next to the per-image metrics
(rmse, rmse_log, silog) that are averaged over images as iDisc does.
"""

from collections import OrderedDict
from typing import Dict, Optional

import numpy as np

# Fractions of (H, W): rows [top, bottom), cols [left, right).
CROPS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.03594771, 0.96405229),
}
POOLED = ("abs_rel", "sq_rel", "delta1", "delta2", "delta3", "delta1_instance", "delta1_background")
PER_IMAGE = ("rmse", "rmse_log", "silog")


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


def image_depth_stats(
    pred: np.ndarray,
    gt: np.ndarray,
    instance_mask: Optional[np.ndarray] = None,
    crop: str = "none",
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
) -> Dict[str, float]:
    """Sums, counts and per-image metrics of one image.

    Args:
        pred: (H, W) predicted depth, clipped to [min_depth, max_depth].
        gt: (H, W) GT depth; valid where min_depth < gt < max_depth, inside the crop.
        instance_mask: (H, W) bool, pixels of object instances (Table IV), or None.

    Returns:
        dict with ``n``, ``n_instance``, ``n_background``, ``sum_*`` and per-image metrics
        (nan without valid pixels).
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and GT {gt.shape} differ in size")
    valid = (gt > min_depth) & (gt < max_depth) & crop_mask(gt.shape, crop)
    p = np.clip(pred[valid].astype(np.float64), min_depth, max_depth)
    g = gt[valid].astype(np.float64)
    ratio_ok = np.maximum(g / p, p / g)
    inst = instance_mask[valid] if instance_mask is not None else np.zeros(g.shape, bool)
    d1 = ratio_ok < 1.25
    log_diff = np.log(p) - np.log(g)
    n = int(valid.sum())
    stats = OrderedDict(
        n=n,
        n_instance=int(inst.sum()),
        n_background=int((~inst).sum()),
        sum_abs_rel=float(np.sum(np.abs(g - p) / g)),
        sum_sq_rel=float(np.sum((g - p) ** 2 / g)),
        sum_delta1=float(d1.sum()),
        sum_delta2=float((ratio_ok < 1.25**2).sum()),
        sum_delta3=float((ratio_ok < 1.25**3).sum()),
        sum_delta1_instance=float(d1[inst].sum()),
        sum_delta1_background=float(d1[~inst].sum()),
    )
    if n:
        stats["rmse"] = float(np.sqrt(np.mean((g - p) ** 2)))
        stats["rmse_log"] = float(np.sqrt(np.mean(log_diff**2)))
        stats["silog"] = float(100 * np.sqrt(max(np.mean(log_diff**2) - np.mean(log_diff) ** 2, 0)))
    else:
        stats.update(rmse=float("nan"), rmse_log=float("nan"), silog=float("nan"))
    return stats


def summarize_depth_stats(rows) -> Dict[str, float]:
    """Dataset metrics from per-image rows of :func:`image_depth_stats`.

    abs_rel, sq_rel, delta_k (and delta_1 on instance / background pixels) pool all valid
    pixels of the dataset; rmse, rmse_log and silog are per image, then averaged.
    """
    total = {k: float(sum(r[k] for r in rows)) for k in ("n", "n_instance", "n_background")}
    out = OrderedDict()
    for name in POOLED:
        count = total["n_" + name.split("_")[1]] if name.startswith("delta1_") else total["n"]
        value = sum(r["sum_" + name] for r in rows)
        out[name] = value / count if count else float("nan")
    for name in PER_IMAGE:
        values = [r[name] for r in rows if r["n"]]
        out[name] = float(np.mean(values)) if values else float("nan")
    return out
