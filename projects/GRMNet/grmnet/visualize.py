"""Drawings of referred instances and of the GRM references of one RoI (like Fig. 5).

Labels never overlap each other: :func:`place_labels` puts each one next to a corner of its box
where it is free, else in a free slot of a column at the image's right or left edge, joined to
its box by a leader line.
"""

from typing import List, Sequence, Tuple

import cv2
import numpy as np

from d2common.visualization import label_colors

FONT, FONT_SCALE, THICKNESS = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
# Drawings are upscaled to at least this many pixels on their longer side so that labels fit.
MIN_CANVAS = 512
PAD = 2

Rect = Tuple[int, int, int, int]  # x1, y1, x2, y2


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(
    boxes: Sequence[Sequence[float]], sizes: Sequence[Tuple[int, int]], image_hw: Tuple[int, int]
) -> List[Tuple[Rect, bool]]:
    """Non-overlapping label rectangles inside the image, one per box, in order.

    Args:
        boxes: (N, 4) XYXY boxes the labels belong to.
        sizes: N (width, height) label sizes in pixels.
        image_hw: (H, W) of the canvas.

    Returns:
        N (rect, needs_leader): rect XYXY; ``needs_leader`` when the label sits in an edge
        column away from its box. Rectangles overlap neither each other nor (when there is
        room) any edge of the image.
    """
    height, width = image_hw
    placed: List[Rect] = []
    out = []
    for box, (w, h) in zip(boxes, sizes):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        w, h = w + 2 * PAD, h + 2 * PAD
        candidates = [
            (x1, y1 - h),  # above, left-aligned
            (x2 - w, y1 - h),  # above, right-aligned
            (x1, y2),  # below, left-aligned
            (x2 - w, y2),  # below, right-aligned
            (x1, y1),  # inside, top-left
            (x2 - w, y2 - h),  # inside, bottom-right
        ]
        rect, leader = None, False
        for cx, cy in candidates:
            r = (cx, cy, cx + w, cy + h)
            inside = r[0] >= 0 and r[1] >= 0 and r[2] <= width and r[3] <= height
            if inside and not any(_overlaps(r, p) for p in placed):
                rect = r
                break
        if rect is None:
            rect, leader = _edge_slot(placed, (x1 + x2) / 2, (y1 + y2) / 2, w, h, width, height)
        placed.append(rect)
        out.append((rect, leader))
    return out


def _edge_slot(placed, cx, cy, w, h, width, height) -> Tuple[Rect, bool]:
    """The free slot nearest to (cx, cy) in the right or left edge column."""
    columns = [width - w, 0] if cx >= width / 2 else [0, width - w]
    rows = sorted(range(0, max(1, height - h + 1), h), key=lambda y: abs(y + h / 2 - cy))
    for x in columns:
        for y in rows:
            r = (x, y, x + w, y + h)
            if not any(_overlaps(r, p) for p in placed):
                return r, True
    # No free slot at all (more labels than the edges hold): stack below the lowest label.
    y = max((p[3] for p in placed), default=0)
    return (columns[0], y, columns[0] + w, y + h), True


def _upscale(image: np.ndarray):
    factor = max(1, int(np.ceil(MIN_CANVAS / max(image.shape[:2]))))
    if factor == 1:
        return image.copy(), 1
    size = (image.shape[1] * factor, image.shape[0] * factor)
    return cv2.resize(image, size, interpolation=cv2.INTER_NEAREST), factor


def draw_labels(image: np.ndarray, boxes, texts: Sequence[str], colors) -> np.ndarray:
    """Writes ``texts`` (one per XYXY box) on white tags placed by :func:`place_labels`, with a
    leader line from a tag in an edge column to its box. In place; returns ``image``."""
    sizes = [cv2.getTextSize(t, FONT, FONT_SCALE, THICKNESS)[0] for t in texts]
    sizes = [(w, h + 4) for w, h in sizes]  # room for descenders
    for (rect, leader), box, text, color, (_, h) in zip(
        place_labels(boxes, sizes, image.shape[:2]), boxes, texts, colors, sizes
    ):
        x1, y1, x2, y2 = rect
        if leader:
            bx = min(max((x1 + x2) / 2, box[0]), box[2])
            by = min(max((y1 + y2) / 2, box[1]), box[3])
            anchor = (x1 if bx < x1 else x2, (y1 + y2) // 2)
            cv2.line(image, anchor, (int(bx), int(by)), color, 1, cv2.LINE_AA)
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 255), -1)
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, 1)
        baseline = y1 + PAD + h - 4
        cv2.putText(
            image, text, (x1 + PAD, baseline), FONT, FONT_SCALE, color, THICKNESS, cv2.LINE_AA
        )
    return image


def draw_instances(image: np.ndarray, instances, class_names: Sequence[str], score_thresh=0.5):
    """Referred instances on an (H, W, 3) uint8 RGB sketch: tinted masks, boxes, class + score.

    The result is upscaled to at least ``MIN_CANVAS`` pixels on its longer side.
    """
    out, f = _upscale(image)
    keep = np.nonzero((instances.scores >= score_thresh).numpy())[0]
    colors = [tuple(int(c) for c in rgb) for rgb in label_colors(len(keep) + 2, seed=7)[1:]]
    boxes, texts = [], []
    for n, i in enumerate(keep):
        mask = instances.pred_masks[i].numpy().astype(bool)
        if f > 1:
            mask = np.kron(mask, np.ones((f, f), bool))
        out[mask] = (0.55 * out[mask] + 0.45 * np.array(colors[n])).astype(np.uint8)
        box = [v * f for v in instances.pred_boxes.tensor[i].tolist()]
        cv2.rectangle(out, (int(box[0]), int(box[1])), (int(box[2]), int(box[3])), colors[n], 2)
        name = class_names[int(instances.pred_classes[i])]
        boxes.append(box)
        texts.append(f"{name} {float(instances.scores[i]):.2f}")
    return draw_labels(out, boxes, texts, colors[: len(keep)])


def _dashed_rectangle(image, box, color, dash=6, thickness=1):
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
            cv2.line(image, p0, p1, color, thickness, cv2.LINE_AA)


REFERENCE_COLOR, CANDIDATE_COLOR, DETECTION_COLOR = (30, 90, 230), (220, 20, 20), (240, 150, 0)


def draw_references(
    image: np.ndarray, candidate_box, reference_boxes, reference_probs, detection_box=None
):
    """The candidate RoI (solid red, "RoI"), its references (dashed blue, "rank: probability")
    and optionally the detection regressed from it (thin dashed orange).

    Args:
        image: (H, W, 3) uint8 RGB.
        candidate_box: (4,) XYXY, the proposal the box head classified.
        reference_boxes, reference_probs: (K', 4), (K',) in reference order.
        detection_box: (4,) XYXY or None.

    Returns:
        The drawing, upscaled to at least ``MIN_CANVAS`` pixels on its longer side.
    """
    out, f = _upscale(image)
    refs = [[v * f for v in box] for box in reference_boxes.tolist()]
    for box in refs:
        _dashed_rectangle(out, box, REFERENCE_COLOR, thickness=2)
    candidate = [v * f for v in candidate_box.tolist()]
    if detection_box is not None:
        _dashed_rectangle(out, [v * f for v in detection_box.tolist()], DETECTION_COLOR, dash=3)
    cv2.rectangle(
        out, tuple(int(v) for v in candidate[:2]), tuple(int(v) for v in candidate[2:]),
        CANDIDATE_COLOR, 2,
    )  # fmt: skip
    texts = ["RoI"] + [f"{r + 1}: {p:.2f}" for r, p in enumerate(reference_probs.tolist())]
    colors = [CANDIDATE_COLOR] + [REFERENCE_COLOR] * len(refs)
    return draw_labels(out, [candidate] + refs, texts, colors)
