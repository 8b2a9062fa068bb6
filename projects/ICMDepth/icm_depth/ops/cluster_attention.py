"""The two attention steps between pixels and depth clusters (paper eq. 1 and 2), plain torch.

Under autocast (or with half / bfloat16 inputs) the logits come from low-precision matmuls, the
softmaxes and A1's row normalisation run in float32 (A1 feeds the ICM loss's logs), and the
aggregations run in the values' dtype (autocast's, under autocast).
"""

import math
from typing import Optional, Tuple

import torch


def cluster_update_attention(
    cluster_queries: torch.Tensor,
    pixel_keys: torch.Tensor,
    pixel_values: torch.Tensor,
    valid: Optional[torch.Tensor] = None,
    normalize_rows: bool = True,
    eps: float = 1e-6,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Transposed cross-attention of eq. (1): depth clusters gather pixel features.

    ``A1 = softmax_N(C_q F_k^T / sqrt(D))``: the softmax runs over the N clusters, so column j
    of A1 is pixel j's membership distribution over clusters (the matrix the ICM loss guides).

    Args:
        cluster_queries: (B, N, D) projected cluster queries C_q.
        pixel_keys: (B, P, D) projected pixel keys F_k.
        pixel_values: (B, P, D) projected pixel values F_v.
        valid: optional (B, P) bool, False on padding pixels (they give nothing to any cluster).
        normalize_rows: divide each row of A1 by its sum over pixels before aggregating
            (iDisc's "sink competition"), so that the update is a weighted mean of pixel values
            and does not grow with the image size. With False the update is A1 F_v literally.
        eps: guards the row normalisation.

    Returns:
        update: (B, N, D), the term A1 F_v added to C in eq. (1).
        attn: (B, N, P), A1 (zero on padding pixels), at least float32.
    """
    scale = 1.0 / math.sqrt(cluster_queries.shape[-1])
    attn = _softmax_fp32(torch.bmm(cluster_queries, pixel_keys.transpose(1, 2)), scale, dim=1)
    if valid is not None:
        attn = attn * valid[:, None, :].to(attn.dtype)
    weights = attn
    if normalize_rows:
        weights = attn / (attn.sum(dim=-1, keepdim=True) + eps)
    return torch.bmm(weights.to(pixel_values.dtype), pixel_values), attn


def pixel_cluster_attention(
    pixel_queries: torch.Tensor, cluster_keys: torch.Tensor, cluster_values: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cross-attention of eq. (2): pixels read the updated depth clusters.

    ``A2 = softmax_N(F_q C_k^T / sqrt(D))`` with the softmax over the N clusters (each row of
    the HW x N matrix sums to one).

    Args:
        pixel_queries: (B, P, D) projected pixel queries F_q.
        cluster_keys: (B, N, D) projected cluster keys C_k.
        cluster_values: (B, N, D) projected cluster values C_v.

    Returns:
        update: (B, P, D), the term A2 C_v added to F_3 in eq. (2).
        attn: (B, P, N), A2, at least float32.
    """
    scale = 1.0 / math.sqrt(pixel_queries.shape[-1])
    attn = _softmax_fp32(torch.bmm(pixel_queries, cluster_keys.transpose(1, 2)), scale, dim=-1)
    return torch.bmm(attn.to(cluster_values.dtype), cluster_values), attn


def _softmax_fp32(logits: torch.Tensor, scale: float, dim: int) -> torch.Tensor:
    return (logits.to(torch.promote_types(logits.dtype, torch.float32)) * scale).softmax(dim=dim)
