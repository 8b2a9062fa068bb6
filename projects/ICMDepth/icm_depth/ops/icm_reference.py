"""A direct numpy implementation of the ICM loss (eq. 4-6), one instance / pair at a time.

Slow by design: the reference the batched op is checked and benchmarked against.
"""

from typing import List, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment


def icm_loss_reference(
    attns: Sequence[np.ndarray],
    level_sizes: Sequence[Tuple[int, int]],
    depth: np.ndarray,
    instance_ids: np.ndarray,
    fuzziness: float = 2.0,
    eps: float = 1e-6,
    normalizer: str = "matched",
) -> List[float]:
    """Same contract as :func:`icm_depth.ops.icm_loss.icm_loss`, on numpy arrays.

    Args:
        attns: per level, (B, N, h * w) A1.
        level_sizes: per level, (h, w).
        depth: (B, H, W); instance_ids: (B, H, W) ints, 0 = none.
        normalizer: "matched" (mean over the matched pairs) or "clusters" (sum / N).
    """
    batch, height, width = depth.shape
    losses = np.zeros((len(attns), batch))
    contributes = np.zeros(batch, bool)
    for b in range(batch):
        x = depth[b].astype(np.float64)
        ids = instance_ids[b]
        labels = [i for i in np.unique(ids) if i > 0 and np.any((ids == i) & (x > 0))]
        if not labels:
            continue
        contributes[b] = True
        centroids = {i: np.median(x[(ids == i) & (x > 0)]) for i in labels}
        g_full = {}
        for i in labels:
            member = (ids == i) & (x > 0)
            num = np.maximum(np.abs(x - centroids[i]), eps) ** (-2.0 / (fuzziness - 1.0))
            den = sum(
                np.maximum(np.abs(x - centroids[k]), eps) ** (-2.0 / (fuzziness - 1.0))
                for k in labels
            )
            g_full[i] = np.where(member, num / np.where(member, den, 1.0), 0.0)
        for level, (attn, (h, w)) in enumerate(zip(attns, level_sizes)):
            rows = np.arange(height) * h // height
            cols = np.arange(width) * w // width
            cell = rows[:, None] * w + cols[None, :]
            counts = np.bincount(cell.ravel(), weights=(x > 0).ravel(), minlength=h * w)
            valid = counts > 0
            a = attn[b].astype(np.float64) * valid
            a_hat = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), eps)
            cost = np.zeros((a.shape[0], len(labels)))
            for col, i in enumerate(labels):
                sums = np.bincount(
                    cell.ravel(), weights=(g_full[i] * (x > 0)).ravel(), minlength=h * w
                )
                g = np.where(valid, sums / np.maximum(counts, 1), 0.0)
                g_hat = g / max(np.linalg.norm(g), eps)
                for c in range(a.shape[0]):
                    log_a = np.log(np.clip(a_hat[c], eps, 1 - eps))
                    log_not_a = np.log(np.maximum(1 - a_hat[c], eps))
                    terms = -g_hat * log_a - (1 - g_hat) * log_not_a
                    cost[c, col] = terms[valid].sum()
            r, k = linear_sum_assignment(cost)
            divisor = len(r) if normalizer == "matched" else a.shape[0]
            losses[level, b] = cost[r, k].sum() / divisor
    if not contributes.any():
        return [0.0] * len(attns)
    return [float(v) for v in losses[:, contributes].mean(axis=1)]
