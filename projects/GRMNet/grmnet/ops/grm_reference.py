"""A straightforward per-RoI implementation of the GRM features (for tests and benchmarks).

It follows the paper's description literally, one candidate at a time, and shares no code with
:mod:`grmnet.ops.grm`.
"""

import math

import torch


def _rel(ci, rj, relative):
    x1, y1, x2, y2 = ci
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    a1, b1, a2, b2 = rj
    ratio = max(a2 - a1, 0.0) * max(b2 - b1, 0.0) / (w * h)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if relative == "corner":
        return [(a1 - x1) / w, (b1 - y1) / h, (a2 - x2) / w, (b2 - y2) / h, ratio]
    if relative == "center":
        return [(a1 - cx) / w, (b1 - cy) / h, (a2 - cx) / w, (b2 - cy) / h, ratio]
    return [((a1 + a2) / 2 - cx) / w, ((b1 + b2) / 2 - cy) / h, ratio]


def grm_features_reference(
    cand_boxes,
    cand_image,
    proposals,
    scores,
    image_hw,
    top_k=10,
    relative="corner",
    manner="consistency",
    use_absolute=True,
):
    """Same contract as :func:`grmnet.ops.grm.grm_features`, with per-image lists.

    Args:
        cand_boxes: (R, 4); cand_image: (R,).
        proposals: list of B tensors (P_b, 4); scores: list of B tensors (P_b,).
        image_hw: (B, 2).

    Returns:
        (R, F) float32 tensor.
    """
    dim = {"corner": 5, "center": 5, "center3": 3}[relative]
    rows = []
    for box, b in zip(cand_boxes.tolist(), cand_image.tolist()):
        pool = list(zip(proposals[b].tolist(), scores[b].tolist(), range(len(proposals[b]))))
        pool = [p for p in pool if p[0] != box]
        if manner == "consistency":
            pool.sort(key=lambda p: (-p[1], p[2]))
        else:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2

            def dist(p, cx=cx, cy=cy):
                px, py = (p[0][0] + p[0][2]) / 2, (p[0][1] + p[0][3]) / 2
                return math.hypot(px - cx, py - cy)

            pool.sort(key=lambda p: (dist(p), p[2]))
        row = []
        for j in range(top_k):
            row += _rel(box, pool[j][0], relative) if j < len(pool) else [0.0] * dim
        if use_absolute:
            h, w = [float(v) for v in image_hw[b]]
            x1, y1, x2, y2 = box
            row += [x1 / w, y1 / h, x2 / w, y2 / h, (x2 - x1) * (y2 - y1) / (w * h)]
        rows.append(row)
    width = top_k * dim + (5 if use_absolute else 0)
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), width)
