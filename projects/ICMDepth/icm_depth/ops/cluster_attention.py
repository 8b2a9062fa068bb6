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
    num_heads: int = 1,
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
        num_heads: heads (iDisc: 4); D is split into num_heads slices of D / num_heads
            channels, each with its own softmax over the clusters.

    Returns:
        update: (B, N, D), the term A1 F_v added to C in eq. (1).
        attn: (B, N, P), A1 (zero on padding pixels), at least float32; with several heads the
            mean of the heads' A1 (still a distribution over the clusters for every pixel).
    """
    batch = cluster_queries.shape[0]
    q, k, v = (_split_heads(x, num_heads) for x in (cluster_queries, pixel_keys, pixel_values))
    scale = 1.0 / math.sqrt(q.shape[-1])
    attn = _softmax_fp32(torch.bmm(q, k.transpose(1, 2)), scale, dim=1)
    if valid is not None:
        attn = attn * valid.repeat_interleave(num_heads, dim=0)[:, None, :].to(attn.dtype)
    weights = attn
    if normalize_rows:
        weights = attn / (attn.sum(dim=-1, keepdim=True) + eps)
    update = _merge_heads(torch.bmm(weights.to(v.dtype), v), num_heads)
    return update, attn.view(batch, num_heads, *attn.shape[1:]).mean(1)


def pixel_cluster_attention(
    pixel_queries: torch.Tensor,
    cluster_keys: torch.Tensor,
    cluster_values: torch.Tensor,
    num_heads: int = 1,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cross-attention of eq. (2): pixels read the updated depth clusters.

    ``A2 = softmax_N(F_q C_k^T / sqrt(D))`` with the softmax over the N clusters (each row of
    the HW x N matrix sums to one).

    Args:
        pixel_queries: (B, P, D) projected pixel queries F_q.
        cluster_keys: (B, N, D) projected cluster keys C_k.
        cluster_values: (B, N, D) projected cluster values C_v.
        num_heads: heads, as in :func:`cluster_update_attention`.

    Returns:
        update: (B, P, D), the term A2 C_v added to F_3 in eq. (2).
        attn: (B, P, N), A2 (mean over heads), at least float32.
    """
    batch = pixel_queries.shape[0]
    q, k, v = (_split_heads(x, num_heads) for x in (pixel_queries, cluster_keys, cluster_values))
    scale = 1.0 / math.sqrt(q.shape[-1])
    attn = _softmax_fp32(torch.bmm(q, k.transpose(1, 2)), scale, dim=-1)
    update = _merge_heads(torch.bmm(attn.to(v.dtype), v), num_heads)
    return update, attn.view(batch, num_heads, *attn.shape[1:]).mean(1)


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, L, D) -> (B * heads, L, D / heads)."""
    batch, length, dim = x.shape
    if num_heads < 1 or dim % num_heads:
        raise ValueError(f"{dim} channels cannot be split into {num_heads} attention heads")
    if num_heads == 1:
        return x
    x = x.view(batch, length, num_heads, dim // num_heads).transpose(1, 2)
    return x.reshape(batch * num_heads, length, dim // num_heads)


def _merge_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B * heads, L, d) -> (B, L, heads * d)."""
    if num_heads == 1:
        return x
    batch_heads, length, dim = x.shape
    x = x.view(batch_heads // num_heads, num_heads, length, dim).transpose(1, 2)
    return x.reshape(batch_heads // num_heads, length, num_heads * dim)


def sine_position_encoding(
    height: int, width: int, dim: int, device=None, temperature: float = 10000.0
) -> torch.Tensor:
    """2-D sine positional encoding (DETR's normalised form, iDisc's pixel encoding).

    Half of the channels encode the row, half the column, each as interleaved sin / cos of
    the position scaled to [0, 2 pi] at geometrically spaced frequencies.

    Returns:
        (height * width, dim) float32; ``dim`` must be a multiple of 4.
    """
    if dim % 4:
        raise ValueError(f"sine positional encoding needs a multiple of 4 channels, got {dim}")
    half = dim // 2
    eps, two_pi = 1e-6, 2 * math.pi
    y = (torch.arange(height, device=device, dtype=torch.float32) + 1) / (height + eps) * two_pi
    x = (torch.arange(width, device=device, dtype=torch.float32) + 1) / (width + eps) * two_pi
    steps = torch.arange(half, device=device, dtype=torch.float32)
    freqs = temperature ** (2 * torch.div(steps, 2, rounding_mode="floor") / half)
    pos_y, pos_x = y[:, None] / freqs, x[:, None] / freqs  # (H, half), (W, half)
    pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
    pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
    grid = torch.cat(
        (
            pos_y[:, None, :].expand(height, width, half),
            pos_x[None, :, :].expand(height, width, half),
        ),
        dim=-1,
    )
    return grid.reshape(height * width, dim)


def _softmax_fp32(logits: torch.Tensor, scale: float, dim: int) -> torch.Tensor:
    return (logits.to(torch.promote_types(logits.dtype, torch.float32)) * scale).softmax(dim=dim)
