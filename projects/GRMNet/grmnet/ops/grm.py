"""Global Reference Mechanism (GRM) features, batched over all RoIs of a batch (plain torch).

For every candidate RoI ``C_i`` the GRM picks K references ``R_j`` among the post-NMS RPN
proposals of the same image and describes them relative to ``C_i`` (Eq. 1 of the paper); the
candidate's absolute position is appended. Nothing here loops over RoIs.
"""

from typing import List, Sequence, Tuple

import torch

RELATIVE_DIMS = {"corner": 5, "center": 5, "center3": 3}
SELECTION_MANNERS = ("consistency", "distance")
ABSOLUTE_DIM = 5
# Boxes narrower than this (pixels) would make the normalised offsets explode.
_MIN_SIDE = 1.0


def grm_feature_dim(top_k: int, relative: str = "corner", use_absolute: bool = True) -> int:
    """Length of the per-RoI GRM vector: ``K * d + 5 * use_absolute``."""
    if relative not in RELATIVE_DIMS:
        raise ValueError(
            f"unknown relative encoding {relative!r}; use one of {list(RELATIVE_DIMS)}"
        )
    return top_k * RELATIVE_DIMS[relative] + (ABSOLUTE_DIM if use_absolute else 0)


def pad_reference_pool(
    boxes: Sequence[torch.Tensor], scores: Sequence[torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stacks per-image proposals into padded tensors (one Python step per image, not per RoI).

    Args:
        boxes: B tensors of shape (P_b, 4), XYXY.
        scores: B tensors of shape (P_b,), objectness (any monotone score).

    Returns:
        pool_boxes (B, P, 4), pool_scores (B, P), pool_valid (B, P) bool, with P = max P_b.
    """
    num = max([len(b) for b in boxes] + [0])
    dev = boxes[0].device if len(boxes) else torch.device("cpu")
    pool_boxes = torch.zeros(len(boxes), num, 4, device=dev)
    pool_scores = torch.full((len(boxes), num), float("-inf"), device=dev)
    pool_valid = torch.zeros(len(boxes), num, dtype=torch.bool, device=dev)
    for b, (bx, sc) in enumerate(zip(boxes, scores)):
        pool_boxes[b, : len(bx)] = bx.float()
        pool_scores[b, : len(bx)] = sc.float()
        pool_valid[b, : len(bx)] = True
    return pool_boxes, pool_scores, pool_valid


def _centres(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., :2] + boxes[..., 2:]) * 0.5


def select_references(
    cand_boxes: torch.Tensor,
    cand_image: torch.Tensor,
    pool_boxes: torch.Tensor,
    pool_scores: torch.Tensor,
    pool_valid: torch.Tensor,
    top_k: int,
    manner: str = "consistency",
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Picks K references per candidate among the proposals of its image.

    ``consistency`` (the paper): the K proposals of highest objectness, sorted explicitly (stable,
    so ties keep the proposal order). ``distance`` (MAttNet style): the K proposals whose centres
    are closest to the candidate's centre. Proposals identical to the candidate box are excluded;
    missing references (fewer than K proposals) are flagged invalid.

    Args:
        cand_boxes: (R, 4) candidate boxes, XYXY.
        cand_image: (R,) long, index of each candidate's image in the batch.
        pool_boxes, pool_scores, pool_valid: (B, P, 4), (B, P), (B, P) from
            :func:`pad_reference_pool`.
        top_k: K.
        manner: "consistency" or "distance".

    Returns:
        ref_boxes (R, K, 4) (zeros where invalid), ref_valid (R, K) bool.
    """
    if manner not in SELECTION_MANNERS:
        raise ValueError(f"unknown reference manner {manner!r}; use one of {SELECTION_MANNERS}")
    num_cand, num_pool = cand_boxes.shape[0], pool_boxes.shape[1]
    if top_k == 0 or num_pool == 0 or num_cand == 0:
        return (
            cand_boxes.new_zeros(num_cand, top_k, 4),
            torch.zeros(num_cand, top_k, dtype=torch.bool, device=cand_boxes.device),
        )
    # index_select / gather rather than advanced indexing: the latter is much slower on CPU.
    num_valid = pool_valid.sum(1).index_select(0, cand_image)  # (R,)
    if manner == "consistency":
        # Stable sort: ties keep the proposal order, so the selection is deterministic.
        order = torch.sort(pool_scores, dim=1, descending=True, stable=True).indices
        sorted_boxes = torch.gather(pool_boxes, 1, order[..., None].expand(-1, -1, 4))
        sorted_valid = torch.gather(pool_valid, 1, order)

        def window(rows, size):
            images = cand_image.index_select(0, rows)
            return (
                sorted_boxes[:, :size].index_select(0, images),
                sorted_valid[:, :size].index_select(0, images),
            )

    else:
        delta = _centres(pool_boxes).index_select(0, cand_image) - _centres(cand_boxes)[:, None]
        dist = (delta * delta).sum(-1)
        dist = dist.masked_fill(~pool_valid.index_select(0, cand_image), float("inf"))

        def window(rows, size):
            idx = torch.topk(dist.index_select(0, rows), size, dim=1, largest=False).indices
            images = cand_image.index_select(0, rows)
            boxes = torch.gather(
                pool_boxes.index_select(0, images), 1, idx[..., None].expand(-1, -1, 4)
            )
            return boxes, torch.gather(pool_valid.index_select(0, images), 1, idx)

    # The candidate itself is normally the only excluded proposal, so a window of K + 1 ordered
    # proposals suffices; rows whose window held duplicates of the candidate are redone in full.
    all_rows = torch.arange(num_cand, device=cand_boxes.device)
    size = min(num_pool, top_k + 1)
    ref_boxes, ref_valid = _first_k_not_self(cand_boxes, *window(all_rows, size), top_k)
    redo = (ref_valid.sum(1) < top_k) & (num_valid > size)
    if bool(redo.any()):
        rows = all_rows[redo]
        cand = cand_boxes.index_select(0, rows)
        boxes, valid = _first_k_not_self(cand, *window(rows, num_pool), top_k)
        ref_boxes.index_copy_(0, rows, boxes)
        ref_valid.index_copy_(0, rows, valid)
    return ref_boxes, ref_valid


def _first_k_not_self(cand_boxes, window_boxes, window_valid, top_k):
    """The first ``top_k`` valid window entries that differ from the candidate box.

    Args:
        cand_boxes: (R, 4); window_boxes: (R, M, 4) in preference order; window_valid: (R, M).

    Returns:
        (R, K, 4) boxes (zeros where missing), (R, K) bool.
    """
    num_rows, size = window_valid.shape
    keep = window_valid & ~(window_boxes == cand_boxes[:, None, :]).all(-1)
    # slot of every kept entry among the kept ones; everything else goes to the spare slot K
    slot = torch.cumsum(keep.long(), dim=1) - 1
    slot = torch.where(keep & (slot < top_k), slot, torch.full_like(slot, top_k))
    position = torch.full((num_rows, top_k + 1), size, dtype=torch.long, device=keep.device)
    columns = torch.arange(size, device=keep.device).expand(num_rows, -1)
    position.scatter_(1, slot, columns)
    position = position[:, :top_k]
    ref_valid = position < size
    idx = position.clamp(max=size - 1)[..., None].expand(-1, -1, 4)
    ref_boxes = torch.gather(window_boxes, 1, idx) * ref_valid[..., None]
    return ref_boxes, ref_valid


def relative_position(
    cand_boxes: torch.Tensor,
    ref_boxes: torch.Tensor,
    ref_valid: torch.Tensor,
    relative: str = "corner",
) -> torch.Tensor:
    """Reference information ``delta_ij`` of every (candidate, reference) pair.

    ``corner`` (Eq. 1 of the paper): top-left / bottom-right offsets over the candidate size and
    the area ratio. ``center`` (the authors' code, MAttNet): the reference corners measured from
    the candidate's centre. ``center3`` (Table 2, #6): centre offsets and the area ratio.

    Args:
        cand_boxes: (R, 4) XYXY.
        ref_boxes: (R, K, 4) XYXY.
        ref_valid: (R, K) bool; invalid references give zero vectors.
        relative: "corner", "center" or "center3".

    Returns:
        (R, K, d) with d = 5, 5 or 3.
    """
    if relative not in RELATIVE_DIMS:
        raise ValueError(
            f"unknown relative encoding {relative!r}; use one of {list(RELATIVE_DIMS)}"
        )
    cand = cand_boxes[:, None, :]
    wh_i = (cand[..., 2:] - cand[..., :2]).clamp(min=_MIN_SIDE)  # (R, 1, 2)
    wh_j = (ref_boxes[..., 2:] - ref_boxes[..., :2]).clamp(min=0)
    area_ratio = (wh_j[..., 0] * wh_j[..., 1] / (wh_i[..., 0] * wh_i[..., 1]))[..., None]
    if relative == "corner":
        offsets = (ref_boxes - cand) / wh_i.repeat(1, 1, 2)
    elif relative == "center":
        offsets = (ref_boxes - _centres(cand).repeat(1, 1, 2)) / wh_i.repeat(1, 1, 2)
    else:
        offsets = (_centres(ref_boxes) - _centres(cand)) / wh_i
    delta = torch.cat([offsets, area_ratio], dim=-1)
    return delta * ref_valid[..., None]


def absolute_position(boxes: torch.Tensor, image_hw: torch.Tensor) -> torch.Tensor:
    """``[x1/W, y1/H, x2/W, y2/H, wh/(WH)]`` of each box.

    Args:
        boxes: (R, 4) XYXY.
        image_hw: (R, 2) height and width of each box's image.

    Returns:
        (R, 5).
    """
    h, w = image_hw[:, 0:1].to(boxes.dtype), image_hw[:, 1:2].to(boxes.dtype)
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)
    area = size[:, 0:1] * size[:, 1:2] / (w * h)
    return torch.cat(
        [boxes[:, 0:1] / w, boxes[:, 1:2] / h, boxes[:, 2:3] / w, boxes[:, 3:4] / h, area], 1
    )


def grm_features(
    cand_boxes: torch.Tensor,
    cand_image: torch.Tensor,
    pool_boxes: torch.Tensor,
    pool_scores: torch.Tensor,
    pool_valid: torch.Tensor,
    image_hw: torch.Tensor,
    top_k: int = 10,
    relative: str = "corner",
    manner: str = "consistency",
    use_absolute: bool = True,
) -> torch.Tensor:
    """The GRM vector of every candidate RoI of a batch.

    Args:
        cand_boxes: (R, 4) candidate RoIs, XYXY in input-image pixels.
        cand_image: (R,) long, batch index of each RoI.
        pool_boxes, pool_scores, pool_valid: (B, P, 4), (B, P), (B, P): post-NMS proposals.
        image_hw: (B, 2) height, width of each input image (before padding).
        top_k, relative, manner, use_absolute: see :func:`select_references`,
            :func:`relative_position`; ``use_absolute`` appends :func:`absolute_position`.

    Returns:
        (R, grm_feature_dim(top_k, relative, use_absolute)): K reference vectors in reference
        order (flattened), then the absolute position.
    """
    cand_boxes = cand_boxes.float()
    parts: List[torch.Tensor] = []
    if top_k > 0:
        ref_boxes, ref_valid = select_references(
            cand_boxes, cand_image, pool_boxes.float(), pool_scores, pool_valid, top_k, manner
        )
        parts.append(relative_position(cand_boxes, ref_boxes, ref_valid, relative).flatten(1))
    if use_absolute:
        parts.append(absolute_position(cand_boxes, image_hw.index_select(0, cand_image)))
    if not parts:
        return cand_boxes.new_zeros(cand_boxes.shape[0], 0)
    return torch.cat(parts, dim=1)


def saturating_cast(vectors: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``vectors`` in ``dtype``, clamped to its finite range.

    GRM vectors are computed in float32; a tiny candidate box makes area ratios and offsets that
    overflow float16 (max 65504) to inf, which would poison the fused RoI features under AMP.

    Args:
        vectors: (R, D) GRM vectors.
        dtype: the dtype of the pooled RoI features they are concatenated to.

    Returns:
        (R, D) in ``dtype``.
    """
    if dtype.is_floating_point and torch.finfo(dtype).max < torch.finfo(vectors.dtype).max:
        limit = torch.finfo(dtype).max
        vectors = vectors.clamp(-limit, limit)
    return vectors.to(dtype)


def tile_to(vectors: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C) -> (N, C, size, size), a broadcast view expanded in memory by the caller's cat."""
    return vectors[:, :, None, None].expand(-1, -1, size, size)
