"""Drawings of referred instances and of the GRM references of one RoI (like Fig. 5)."""

from typing import Sequence

import cv2
import numpy as np

from d2common.visualization import label_colors


def _label(image, text, x, y, color):
    y = max(y, 12)
    cv2.putText(
        image, text, (int(x) + 2, int(y) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA
    )


def draw_instances(image: np.ndarray, instances, class_names: Sequence[str], score_thresh=0.5):
    """Referred instances on an (H, W, 3) uint8 RGB sketch: tinted masks, boxes, class + score."""
    out = image.copy()
    keep = instances.scores >= score_thresh
    colors = label_colors(max(2, int(keep.sum()) + 1), seed=7)[1:]
    for n, i in enumerate(np.nonzero(keep.numpy())[0]):
        color = tuple(int(c) for c in colors[n])
        mask = instances.pred_masks[i].numpy().astype(bool)
        out[mask] = (0.55 * out[mask] + 0.45 * np.array(color)).astype(np.uint8)
        x1, y1, x2, y2 = instances.pred_boxes.tensor[i].tolist()
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), color, 2)
        name = class_names[int(instances.pred_classes[i])]
        _label(out, f"{name} {float(instances.scores[i]):.2f}", x1, y1, color)
    return out


def _dashed_rectangle(image, box, color, dash=6):
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    for a, b in (
        ((x1, y1), (x2, y1)),
        ((x2, y1), (x2, y2)),
        ((x2, y2), (x1, y2)),
        ((x1, y2), (x1, y1)),
    ):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for s in range(0, length, 2 * dash):
            t0, t1 = s / max(length, 1), min(s + dash, length) / max(length, 1)
            p0 = (int(a[0] + (b[0] - a[0]) * t0), int(a[1] + (b[1] - a[1]) * t0))
            p1 = (int(a[0] + (b[0] - a[0]) * t1), int(a[1] + (b[1] - a[1]) * t1))
            cv2.line(image, p0, p1, color, 1, cv2.LINE_AA)


def draw_references(image: np.ndarray, candidate_box, reference_boxes, reference_probs):
    """The candidate RoI (solid red) and its references (dashed blue, "rank: probability")."""
    out = image.copy()
    for rank, (box, prob) in enumerate(zip(reference_boxes.tolist(), reference_probs.tolist())):
        _dashed_rectangle(out, box, (30, 90, 230))
        _label(out, f"{rank + 1}: {prob:.2f}", box[0], box[1], (30, 90, 230))
    x1, y1, x2, y2 = (int(round(v)) for v in candidate_box.tolist())
    cv2.rectangle(out, (x1, y1), (x2, y2), (220, 20, 20), 2)
    return out
