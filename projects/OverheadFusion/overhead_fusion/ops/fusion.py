"""Quality-weighted and mean fusion of a variable number of views per sample (Eqs. 1-2).

Views of a whole batch are stored flat, ``(T, C, H, W)`` with ``T = sum_i V_i``, next to a
``segment_ids`` vector naming the sample of every view, so batches whose samples have different
numbers of views need neither padding nor a Python loop.
"""

import torch

__all__ = ["segment_ids_from_counts", "segment_softmax", "quality_fusion", "mean_fusion"]


def segment_ids_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """``counts`` (N,) views per sample -> (T,) sample index of every view, T = counts.sum()."""
    counts = torch.as_tensor(counts)
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def _expand(index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return index.view(-1, *([1] * (like.dim() - 1))).expand_as(like)


def segment_softmax(
    logits: torch.Tensor, segment_ids: torch.Tensor, num_segments: int
) -> torch.Tensor:
    """Softmax over the views of each sample, independently at every pixel (Eq. 1).

    Args:
        logits: (T, ...) quality logits Q_j.
        segment_ids: (T,) int64, sample index of every view, in [0, num_segments).
        num_segments: N, the number of samples.

    Returns:
        (T, ...) relative quality Q*_j; sums to one over the views of a sample.
    """
    shape = (num_segments,) + tuple(logits.shape[1:])
    # The maximum only stabilises exp(); softmax does not depend on it, so no gradient is needed.
    seg_max = logits.detach().new_full(shape, float("-inf"))
    seg_max = seg_max.scatter_reduce(0, _expand(segment_ids, logits), logits.detach(), "amax")
    exp = torch.exp(logits - seg_max.index_select(0, segment_ids))
    denom = exp.new_zeros(shape).index_add(0, segment_ids, exp)
    return exp / denom.index_select(0, segment_ids)


def quality_fusion(
    views: torch.Tensor, logits: torch.Tensor, segment_ids: torch.Tensor, num_segments: int
):
    """Fused image F = sum_j Q*_j I_j (Eq. 2).

    Args:
        views: (T, C, H, W) input images I_j of all samples.
        logits: (T, 1, H, W) quality logits Q_j.
        segment_ids: (T,) sample index of every view.
        num_segments: N.

    Returns:
        fused: (N, C, H, W); weights: (T, 1, H, W) relative quality maps Q*_j.
    """
    weights = segment_softmax(logits, segment_ids, num_segments)
    weighted = views * weights
    fused = weighted.new_zeros((num_segments,) + tuple(views.shape[1:]))
    return fused.index_add(0, segment_ids, weighted), weights


def mean_fusion(views: torch.Tensor, segment_ids: torch.Tensor, num_segments: int):
    """The baseline: unweighted mean of each sample's views.

    Args:
        views: (T, C, H, W); segment_ids: (T,); num_segments: N.

    Returns:
        fused: (N, C, H, W); weights: (T, 1, H, W) equal to 1 / V_i.
    """
    counts = torch.bincount(segment_ids, minlength=num_segments).to(views.dtype)
    weights = (1.0 / counts).index_select(0, segment_ids).view(-1, 1, 1, 1)
    weights = weights.expand(-1, 1, *views.shape[2:])
    fused = views.new_zeros((num_segments,) + tuple(views.shape[1:]))
    return fused.index_add(0, segment_ids, views * weights), weights
