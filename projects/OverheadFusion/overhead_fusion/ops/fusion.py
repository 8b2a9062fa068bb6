"""Quality-weighted and mean fusion of a variable number of views per sample (Eqs. 1-2).

Views of a whole batch are stored flat, ``(T, C, H, W)`` with ``T = sum_i V_i`` (a sample's views
consecutive), next to a ``segment_ids`` vector naming the sample of every view, so batches whose
samples have different numbers of views need no Python loop over samples.

Mixed precision: the softmax over views and the weighted sum run in float32 whatever the dtype
of the logits (bfloat16 weights would be off by up to 0.4%); the results take the promoted dtype
of the inputs (float32 under autocast, where the views stay float32).
"""

import torch

__all__ = ["segment_ids_from_counts", "segment_softmax", "quality_fusion", "mean_fusion"]


def segment_ids_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """``counts`` (N,) views per sample -> (T,) sample index of every view, T = counts.sum()."""
    counts = torch.as_tensor(counts)
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def _pad_positions(segment_ids: torch.Tensor, num_segments: int):
    """(T,) sample ids -> (T,) position of every view within its sample, and V_max."""
    counts = torch.bincount(segment_ids, minlength=num_segments)
    offsets = torch.cumsum(counts, 0) - counts
    positions = torch.arange(len(segment_ids), device=segment_ids.device) - offsets[segment_ids]
    return positions, int(counts.max()) if len(counts) else 0


def _to_padded(x: torch.Tensor, segment_ids, positions, num_segments, max_views, fill):
    """(T, ...) -> (N, V_max, ...) with ``fill`` where a sample has fewer views."""
    padded = x.new_full((num_segments, max_views) + tuple(x.shape[1:]), fill)
    return padded.index_put((segment_ids, positions), x)


def segment_softmax(
    logits: torch.Tensor, segment_ids: torch.Tensor, num_segments: int
) -> torch.Tensor:
    """Softmax over the views of each sample, independently at every pixel (Eq. 1).

    Args:
        logits: (T, ...) quality logits Q_j.
        segment_ids: (T,) int64, sample index of every view, in [0, num_segments), sorted.
        num_segments: N, the number of samples.

    Returns:
        (T, ...) relative quality Q*_j; sums to one over the views of a sample.
    """
    positions, max_views = _pad_positions(segment_ids, num_segments)
    # Whole views are copied into a (N, V_max, ...) block padded with -inf (zero weight), so the
    # softmax runs as one dense op; per-element scatters are much slower on CPU.
    padded = _to_padded(
        _at_least_fp32(logits), segment_ids, positions, num_segments, max_views, float("-inf")
    )
    return torch.softmax(padded, dim=1)[segment_ids, positions].to(logits.dtype)


def quality_fusion(
    views: torch.Tensor, logits: torch.Tensor, segment_ids: torch.Tensor, num_segments: int
):
    """Fused image F = sum_j Q*_j I_j (Eq. 2).

    Args:
        views: (T, C, H, W) input images I_j of all samples.
        logits: (T, 1, H, W) quality logits Q_j.
        segment_ids: (T,) sample index of every view (sorted: a sample's views are consecutive).
        num_segments: N.

    Returns:
        fused: (N, C, H, W); weights: (T, 1, H, W) relative quality maps Q*_j.
    """
    positions, max_views = _pad_positions(segment_ids, num_segments)
    dtype = torch.promote_types(views.dtype, logits.dtype)
    padded_logits = _to_padded(
        _at_least_fp32(logits), segment_ids, positions, num_segments, max_views, float("-inf")
    )
    padded_weights = torch.softmax(padded_logits, dim=1)
    padded_views = _to_padded(
        _at_least_fp32(views), segment_ids, positions, num_segments, max_views, 0.0
    )
    fused = (padded_views * padded_weights).sum(dim=1)
    return fused.to(dtype), padded_weights[segment_ids, positions].to(dtype)


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


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
