"""Weighted non-local block (Lin et al., Eq. 1) with memory-efficient non-local means.

``z = w * W_z(y) + (1 - w) * x``, where ``y`` is the non-local means of ``x`` (Wang et al. 2018)
in one of four forms. Beyond ``DENSE_MAX_ELEMENTS`` none of the forms materialises the N x N
affinity matrix:

- embedded Gaussian ``softmax_j(theta_i . phi_j)`` and Gaussian ``softmax_j(x_i . x_j)`` go
  through ``scaled_dot_product_attention(..., scale=1.0)`` (flash / memory-efficient kernels on
  CPU and CUDA), the symmetric tile kernel (:class:`SymmetricSoftmaxAttention`, keys = queries),
  query blocks with recomputation (:class:`ChunkedSoftmaxAttention`) or, for short sequences of
  wide heads on the CPU, the dense matrix; "auto" picks by the crossovers measured on the CPU;
- dot product ``(theta_i . phi_j) / M`` is computed as ``theta (phi^T g) / M``;
- concatenation ``ReLU(a . theta_i + b . phi_j + c) / M`` is computed exactly from sorted
  suffix sums of ``g`` (O(M log M) time, O(M C') memory).

Mixed precision: the result takes autocast's dtype when autocast is on (else the promoted input
dtype); the BLAS kernels (chunked, symmetric, dense) and the concatenation form's suffix sums
compute in fp32 whatever the input dtype, sdpa and the dot-product form in the result dtype.

This module imports torch only.
"""

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

# Softmax weights are computed as 2^(log2(e) * logits): torch's CPU exp2 keeps its speed on
# the underflowing inputs of peaked softmaxes (large unscaled logits), where exp is about 5x
# slower (torch 2.3.1, one EPYC core, 16M values).
_LOG2E = math.log2(math.e)
NONLOCAL_MODES = ("embedded_gaussian", "gaussian", "dot_product", "concatenation")
ATTENTION_BACKENDS = ("auto", "dense", "sdpa", "chunked", "symmetric")
# CPU crossovers of "auto", measured forward + backward on one thread for N = 480..8192
# (tools/benchmark_attention_crossover.py, with and without --subsampled). Widths differ in the
# sub-sampled Gaussian form (M = N / 4 keys, Ev = E / 2): up to E = SDPA_PADDED_MAX_WIDTH the
# fused kernel on zero-padded values is the fastest (7-40% ahead of the chunked kernel from
# N = 1920 on); for wider heads the dense N x M version is 8-15% ahead of the chunked kernel
# while B N M <= DENSE_MAX_ELEMENTS and 30% behind at 4x that. With equal widths (embedded
# Gaussian) sdpa is the fastest except for heads of DENSE_MIN_EQUAL_WIDTH and more, where the
# dense version is 5-20% ahead up to DENSE_MAX_ELEMENTS; with key is query the symmetric kernel
# is the fastest at every width and length measured.
SDPA_PADDED_MAX_WIDTH = 128
DENSE_MAX_ELEMENTS = 2**22
DENSE_MIN_EQUAL_WIDTH = 512


def softmax_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, backend: str = "auto"
) -> torch.Tensor:
    """``softmax(query key^T) value`` without scaling, in O(N) memory.

    Args:
        query: (B, N, E). key: (B, M, E); pass ``key=query`` (the same tensor) for a
            self-similarity, which the symmetric kernel computes with fewer products.
        value: (B, M, Ev).
        backend: "dense" (the B x N x M matrix and autograd: O(N M) memory), "sdpa"
            (``scaled_dot_product_attention``, fused kernels), "chunked" (query blocks with
            recomputation in backward, BLAS only), "symmetric" (``key is query``: tiles of the
            upper triangle of the symmetric logits, BLAS only), or "auto": symmetric when
            ``key is query``, else sdpa on CUDA; on the CPU, by the measured crossovers, dense
            while B N M <= ``DENSE_MAX_ELEMENTS`` for wide heads (E == Ev >=
            ``DENSE_MIN_EQUAL_WIDTH``, or E != Ev wider than ``SDPA_PADDED_MAX_WIDTH``), else
            sdpa for E == Ev or narrow padded widths and chunked for wide ones.

    Returns:
        (B, N, Ev).
    """
    if backend not in ATTENTION_BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; expected {ATTENTION_BACKENDS}")
    if backend == "auto":
        backend = _auto_backend(query, key, value)
    dtype = result_dtype(query, key, value)
    if backend == "dense":
        with _autocast_off(query):
            ref = _at_least_fp32(query, key.dtype, value.dtype)
            q, k, v = (t.to(ref.dtype) for t in (query, key, value))
            logits2 = torch.bmm(q * _LOG2E, k.transpose(1, 2))
            weights = (logits2 - logits2.amax(dim=-1, keepdim=True).detach()).exp2()
            return torch.bmm(weights / weights.sum(dim=-1, keepdim=True), v).to(dtype)
    if backend == "symmetric":
        if key is not query:
            raise ValueError("the symmetric attention backend needs key to be query")
        with _autocast_off(query):
            x = _at_least_fp32(query, value.dtype)
            return SymmetricSoftmaxAttention.apply(x, value.to(x.dtype)).to(dtype)
    if backend == "chunked":
        # Outside autocast and in fp32: the in-place running sums must share one dtype, and
        # unscaled logits (Gaussian form) lose whole units in bf16.
        with _autocast_off(query):
            ref = _at_least_fp32(query, key.dtype, value.dtype)
            q, k, v = (t.to(ref.dtype) for t in (query, key, value))
            return ChunkedSoftmaxAttention.apply(q, k, v).to(dtype)
    query, key, value = query.to(dtype), key.to(dtype), value.to(dtype)
    e, ev = query.shape[-1], value.shape[-1]
    # The fused CPU / CUDA kernels need one head dimension for q, k and v; zero padding leaves
    # the dot products (padding q, k) and the weighted sums (padding v) unchanged.
    if e < ev:
        query, key = F.pad(query, (0, ev - e)), F.pad(key, (0, ev - e))
    elif ev < e:
        value = F.pad(value, (0, e - ev))
    out = F.scaled_dot_product_attention(
        query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1), scale=1.0
    )
    return out.squeeze(1)[..., :ev]


def result_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype of a non-local result: autocast's when it is on for the tensors' device (and
    none of them is float64), else the promoted dtype of the tensors."""
    promoted = tensors[0].dtype
    for t in tensors[1:]:
        promoted = torch.promote_types(promoted, t.dtype)
    low = _autocast_dtype(tensors[0].device.type)
    return low if low is not None and promoted != torch.float64 else promoted


def _autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """autocast's dtype on ``device_type`` when autocast is on there, else None."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
        return None
    if device_type == "cuda" and torch.is_autocast_enabled():
        return torch.get_autocast_gpu_dtype()
    if device_type == "cpu" and torch.is_autocast_cpu_enabled():
        return torch.get_autocast_cpu_dtype()
    return None


def _autocast_off(tensor: torch.Tensor):
    return torch.autocast(tensor.device.type, enabled=False)


def _at_least_fp32(tensor: torch.Tensor, *dtypes: torch.dtype) -> torch.Tensor:
    """``tensor`` in the promotion of its dtype, ``dtypes`` and float32."""
    dtype = torch.float32
    for d in (tensor.dtype,) + dtypes:
        dtype = torch.promote_types(dtype, d)
    return tensor.to(dtype)


def _auto_backend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> str:
    if key is query:
        # Fewer products than any fused kernel, which would also have to pad g to the key width.
        return "symmetric"
    if query.device.type == "cuda":
        return "sdpa"
    e, ev = query.shape[-1], value.shape[-1]
    short = query.shape[0] * query.shape[1] * key.shape[1] <= DENSE_MAX_ELEMENTS
    if e == ev:
        return "dense" if short and e >= DENSE_MIN_EQUAL_WIDTH else "sdpa"
    # Padding doubles the value products when Ev = E / 2: cheap for narrow heads, where the
    # fused kernel's speed wins; for wide ones the dense matrix (short sequences) or the
    # chunked kernel's recomputation (long ones) costs less.
    if max(e, ev) <= SDPA_PADDED_MAX_WIDTH:
        return "sdpa"
    return "dense" if short else "chunked"


class ChunkedSoftmaxAttention(torch.autograd.Function):
    """``softmax(q k^T) v`` over blocks of queries; backward recomputes each block.

    Peak extra memory is one (B, rows, M) block, with rows chosen so that a block holds about
    ``CHUNK_ELEMENTS`` values; only the output and the per-query log-sum-exp are kept.
    """

    CHUNK_ELEMENTS = 2**22

    @staticmethod
    def _rows(q, k):
        return max(16, ChunkedSoftmaxAttention.CHUNK_ELEMENTS // max(1, q.shape[0] * k.shape[1]))

    @staticmethod
    def forward(ctx, q, k, v):
        b, n, _ = q.shape
        rows = ChunkedSoftmaxAttention._rows(q, k)
        out = q.new_empty(b, n, v.shape[-1])
        lse2 = q.new_empty(b, n, 1)
        q2, kt = q * _LOG2E, k.transpose(1, 2)
        for s in range(0, n, rows):
            logits2 = torch.bmm(q2[:, s : s + rows], kt)
            peak2 = logits2.amax(dim=-1, keepdim=True)
            weights = logits2.sub_(peak2).exp2_()  # in place: no second buffer
            total = weights.sum(dim=-1, keepdim=True)
            lse2[:, s : s + rows] = peak2 + total.log2()
            out[:, s : s + rows] = torch.bmm(weights, v).div_(total)
        ctx.save_for_backward(q, k, v, out, lse2)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse2 = ctx.saved_tensors
        rows = ChunkedSoftmaxAttention._rows(q, k)
        q2 = q * _LOG2E
        grad_q = torch.empty_like(q)
        grad_k, grad_v = torch.zeros_like(k), torch.zeros_like(v)
        kt, vt = k.transpose(1, 2), v.transpose(1, 2)
        for s in range(0, q.shape[1], rows):
            q_blk, go_blk = q[:, s : s + rows], grad_out[:, s : s + rows]
            probs = torch.bmm(q2[:, s : s + rows], kt).sub_(lse2[:, s : s + rows]).exp2_()
            grad_v.baddbmm_(probs.transpose(1, 2), go_blk)
            grad_probs = torch.bmm(go_blk, vt)
            grad_probs.sub_((go_blk * out[:, s : s + rows]).sum(-1, keepdim=True))
            grad_logits = probs.mul_(grad_probs)
            grad_q[:, s : s + rows] = torch.bmm(grad_logits, k)
            grad_k.baddbmm_(grad_logits.transpose(1, 2), q_blk)
        return grad_q, grad_k, grad_v


class SymmetricSoftmaxAttention(torch.autograd.Function):
    """``softmax(x x^T) v`` from the tiles of the upper triangle of the symmetric ``x x^T``.

    Each off-diagonal tile ``S_IJ = x_I x_J^T`` serves the rows of I and, transposed, the rows
    of J, so the logits are computed once in forward (online softmax on both sides) and once in
    backward, and the two input gradients of a tile merge into one matrix
    ``M = dS_IJ + dS_JI^T`` (``dx_I += M x_J``, ``dx_J += M^T x_I``). Against the N x N
    autograd version (logits, weighted sum, and four backward products) that is two fewer
    E-wide products; memory is a few (B, T, T) tiles, with T chosen so that a tile holds about
    ``TILE_ELEMENTS`` values. When the whole matrix fits one tile, its probabilities are kept
    for backward instead of recomputed.
    """

    TILE_ELEMENTS = 2**22

    @staticmethod
    def _tiles(x):
        n = x.shape[1]
        side = max(16, math.isqrt(SymmetricSoftmaxAttention.TILE_ELEMENTS // max(1, x.shape[0])))
        starts = list(range(0, n, side))
        return [(s, min(s + side, n)) for s in starts]

    @staticmethod
    def forward(ctx, x, v):
        b, n, _ = x.shape
        tiles = SymmetricSoftmaxAttention._tiles(x)
        if len(tiles) == 1:
            # The whole matrix is one tile: keep its probabilities, backward needs no logits.
            logits2 = torch.bmm(x * _LOG2E, x.transpose(1, 2))
            probs = logits2.sub_(logits2.amax(dim=-1, keepdim=True)).exp2_()
            probs.div_(probs.sum(dim=-1, keepdim=True))
            out = torch.bmm(probs, v)
            ctx.save_for_backward(x, v, out, None, probs)
            return out
        peak2 = x.new_full((b, n, 1), float("-inf"))
        total = x.new_zeros(b, n, 1)
        acc = x.new_zeros(b, n, v.shape[-1])
        x2 = x * _LOG2E
        for index, (i0, i1) in enumerate(tiles):
            x2_i = x2[:, i0:i1]
            for j0, j1 in tiles[index:]:
                logits2 = torch.bmm(x2_i, x[:, j0:j1].transpose(1, 2))
                rows = (peak2[:, i0:i1], total[:, i0:i1], acc[:, i0:i1])
                _online_softmax_update(logits2, v[:, j0:j1], *rows, in_place=i0 == j0)
                if i0 != j0:
                    cols = (peak2[:, j0:j1], total[:, j0:j1], acc[:, j0:j1])
                    _online_softmax_update(logits2.transpose(1, 2), v[:, i0:i1], *cols, True)
        out = acc.div_(total)
        lse2 = peak2.add_(total.log2_())
        ctx.save_for_backward(x, v, out, lse2, None)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, v, out, lse2, probs = ctx.saved_tensors
        delta = (grad_out * out).sum(-1, keepdim=True)
        if probs is not None:
            grad_v = torch.bmm(probs.transpose(1, 2), grad_out)
            merged = probs * torch.baddbmm(delta.neg(), grad_out, v.transpose(1, 2))
            return torch.bmm(merged.add_(merged.transpose(1, 2).clone()), x), grad_v
        grad_x, grad_v = torch.zeros_like(x), torch.zeros_like(v)
        tiles = SymmetricSoftmaxAttention._tiles(x)
        x2 = x * _LOG2E
        for index, (i0, i1) in enumerate(tiles):
            x_i, v_i, go_i = x[:, i0:i1], v[:, i0:i1], grad_out[:, i0:i1]
            for j0, j1 in tiles[index:]:
                x_j, v_j, go_j = x[:, j0:j1], v[:, j0:j1], grad_out[:, j0:j1]
                logits2 = torch.bmm(x2[:, i0:i1], x_j.transpose(1, 2))
                # Rows of I: P_IJ, dS_IJ = P_IJ * (go_I v_J^T - delta_I).
                probs = torch.sub(logits2, lse2[:, i0:i1]).exp2_()
                grad_v[:, j0:j1].baddbmm_(probs.transpose(1, 2), go_i)
                merged = probs.mul_(torch.baddbmm(delta[:, i0:i1].neg(), go_i, v_j.transpose(1, 2)))
                if i0 == j0:
                    merged.add_(merged.transpose(1, 2).clone())
                    grad_x[:, i0:i1].baddbmm_(merged, x_i)
                    continue
                # Rows of J, in the tile's transposed layout: P_JI^T, dS_JI^T.
                probs_t = logits2.sub_(lse2[:, j0:j1].transpose(1, 2)).exp2_()
                grad_v[:, i0:i1].baddbmm_(probs_t, go_j)
                probs_t.mul_(
                    torch.baddbmm(delta[:, j0:j1].transpose(1, 2).neg(), v_i, go_j.transpose(1, 2))
                )
                merged.add_(probs_t)
                grad_x[:, i0:i1].baddbmm_(merged, x_j)
                grad_x[:, j0:j1].baddbmm_(merged.transpose(1, 2), x_i)
        return grad_x, grad_v


def _online_softmax_update(logits2, values, peak2, total, acc, in_place):
    """Folds one tile of base-2 logits (B, R, T) with its values (B, T, Ev) into running row
    maxima ``peak2`` (B, R, 1), sums ``total`` (B, R, 1) and weighted sums ``acc`` (B, R, Ev), in
    place. ``in_place`` lets the tile's buffer be overwritten."""
    new_peak = torch.maximum(peak2, logits2.amax(dim=-1, keepdim=True))
    rescale = torch.sub(peak2, new_peak).exp2_()
    weights = (logits2.sub_(new_peak) if in_place else logits2 - new_peak).exp2_()
    total.mul_(rescale).add_(weights.sum(dim=-1, keepdim=True))
    acc.mul_(rescale).baddbmm_(weights, values)
    peak2.copy_(new_peak)


def normalized_dot_product(theta: torch.Tensor, phi: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``sum_j (theta_i . phi_j) g_j / M`` as ``theta (phi^T g) / M``.

    Args:
        theta: (B, N, C'). phi: (B, M, C'). g: (B, M, Cv).

    Returns:
        (B, N, Cv).
    """
    return theta @ (phi.transpose(1, 2) @ g) / phi.shape[1]


def normalized_relu_pairwise(
    query_term: torch.Tensor, key_term: torch.Tensor, g: torch.Tensor
) -> torch.Tensor:
    """``y_i = sum_j ReLU(u_i + v_j) g_j / M`` exactly, without the N x M matrix.

    ``ReLU(u_i + v_j)`` is non-zero only for ``v_j > -u_i``; with the keys sorted by ``v``,
    ``y_i = (u_i * S_g(k_i) + S_vg(k_i)) / M`` where ``S`` are suffix sums and ``k_i`` the first
    sorted key above ``-u_i``.

    Args:
        query_term: (B, N) values ``u``. key_term: (B, M) values ``v``. g: (B, M, Cv).

    Returns:
        (B, N, Cv).
    """
    b, m, cv = g.shape
    v_sorted, order = torch.sort(key_term, dim=1)
    g_sorted = torch.gather(g, 1, order.unsqueeze(-1).expand(b, m, cv))
    zero = g.new_zeros(b, 1, cv)
    suffix_g = torch.cat([_suffix_sum(g_sorted), zero], dim=1)
    suffix_vg = torch.cat([_suffix_sum(v_sorted.unsqueeze(-1) * g_sorted), zero], dim=1)
    first = torch.searchsorted(v_sorted.detach().contiguous(), -query_term.detach(), right=True)
    first = first.unsqueeze(-1).expand(-1, -1, cv)
    y = query_term.unsqueeze(-1) * torch.gather(suffix_g, 1, first)
    return (y + torch.gather(suffix_vg, 1, first)) / m


def _suffix_sum(x: torch.Tensor) -> torch.Tensor:
    """Suffix sums along dim 1 (summed from the end, so no cancellation)."""
    return torch.flip(torch.cumsum(torch.flip(x, dims=[1]), dim=1), dims=[1])


def nonlocal_means(
    mode: str,
    query: torch.Tensor,
    key: torch.Tensor,
    g: torch.Tensor,
    concat_weight: Optional[torch.Tensor] = None,
    concat_bias: Optional[torch.Tensor] = None,
    attention_backend: str = "auto",
) -> torch.Tensor:
    """The non-local operation ``y_i = sum_j f(q_i, k_j) g_j / C(x)`` of one form.

    Args:
        mode: one of NONLOCAL_MODES.
        query: (B, N, E): theta (x itself for the Gaussian form).
        key: (B, M, E): phi (x, possibly sub-sampled, for the Gaussian form).
        g: (B, M, Cv).
        concat_weight: (2E,) weights of the concatenation form's projection ``w_f``.
        concat_bias: () bias of that projection.
        attention_backend: see :func:`softmax_attention` (softmax forms only).

    Returns:
        (B, N, Cv).
    """
    if mode in ("embedded_gaussian", "gaussian"):
        return softmax_attention(query, key, g, attention_backend)
    if mode == "dot_product":
        dtype = result_dtype(query, key, g)
        return normalized_dot_product(query.to(dtype), key.to(dtype), g.to(dtype))
    if mode == "concatenation":
        dtype = result_dtype(query, key, g)
        # Suffix sums of g cancel against u * S_g: fp32, never autocast's dtype.
        with _autocast_off(query):
            query, key, g = (
                _at_least_fp32(t, query.dtype, key.dtype, g.dtype) for t in (query, key, g)
            )
            weight = concat_weight.to(query.dtype)
            e = query.shape[-1]
            u = query @ weight[:e] + (0 if concat_bias is None else concat_bias.to(query.dtype))
            return normalized_relu_pairwise(u, key @ weight[e:], g).to(dtype)
    raise ValueError(f"unknown non-local mode {mode!r}; expected one of {NONLOCAL_MODES}")


class WeightedNonLocal2d(nn.Module):
    """Weighted non-local block: ``z = w * W_z(y) + (1 - w) * x`` (paper Eq. 1).

    ``W_z`` is a 1x1 conv (no bias: a norm follows) and a norm layer. The non-local path reaches
    the output through the product ``w * gamma`` (gamma: the norm's scale), and exactly one of
    the two factors starts at 0: with ``w = 0`` (default) gamma starts at 1, so the block is the
    identity at step 0 and ``dL/dw = <dL/dz, W_z(y) - x>`` is of the order of ``dL/dz`` even when
    every consumer of ``z`` is normalised (which makes the ``- x`` term vanish); with ``w != 0``
    (e.g. the fixed-w ablation) gamma starts at 0 and ``dL/dgamma = w <dL/dz, x_hat>``. Two
    zeros (Wang et al.'s zero gamma behind a zero w) would be a saddle: no parameter of the
    block gets a gradient under normalised consumers. The 1x1 convs start from N(0, 0.01^2) as
    in Wang et al.'s release (an all-zero ``W_z`` never receives a gradient).
    """

    # 2: out_conv has no bias (older checkpoints: folded into a BN's running mean on load).
    _version = 2

    def __init__(
        self,
        in_channels: int,
        *,
        mode: str = "embedded_gaussian",
        reduction: int = 2,
        sub_sample: bool = False,
        weight_init: float = 0.0,
        learn_weight: bool = True,
        norm: Optional[Callable[[int], nn.Module]] = None,
        init_std: float = 0.01,
        gamma_init: Optional[float] = None,
        attention_backend: str = "auto",
    ):
        """
        Args:
            in_channels: C, channels of x and z.
            mode: non-local form, one of NONLOCAL_MODES.
            reduction: r; the inner (theta / phi / g) width is C' = C // r.
            sub_sample: max-pool (2x2) phi and g (and the Gaussian form's keys); an axis of
                size 1 is left as it is.
            weight_init: initial value of the blending weight w.
            learn_weight: learn w (paper); False keeps it fixed (Table 2 ablation).
            norm: factory ``norm(C) -> nn.Module`` for W_z's norm layer (default BatchNorm2d).
            init_std: std of the normal init of the 1x1 convs.
            gamma_init: initial scale of W_z's norm; None: 1 when ``weight_init`` is 0, else 0
                (see the class docstring).
            attention_backend: kernel of the softmax forms, see :func:`softmax_attention`.
        """
        super().__init__()
        if mode not in NONLOCAL_MODES:
            raise ValueError(f"unknown non-local mode {mode!r}; expected one of {NONLOCAL_MODES}")
        if reduction < 1 or in_channels < reduction:
            raise ValueError(
                f"reduction must be in [1, in_channels={in_channels}], got {reduction}"
            )
        self.mode = mode
        self.in_channels = in_channels
        self.inner_channels = in_channels // reduction
        self.sub_sample = sub_sample
        if attention_backend not in ATTENTION_BACKENDS:
            raise ValueError(f"unknown attention backend {attention_backend!r}")
        self.attention_backend = attention_backend
        inner = self.inner_channels
        self.g = nn.Conv2d(in_channels, inner, 1)
        if mode != "gaussian":
            self.theta = nn.Conv2d(in_channels, inner, 1)
            self.phi = nn.Conv2d(in_channels, inner, 1)
        if mode == "concatenation":
            self.concat_project = nn.Conv2d(2 * inner, 1, 1)
        self.pool = SubSample2d() if sub_sample else nn.Identity()
        self.out_conv = nn.Conv2d(inner, in_channels, 1, bias=False)
        self.out_norm = (norm or nn.BatchNorm2d)(in_channels)
        initial = torch.tensor(float(weight_init))
        if learn_weight:
            self.blend_weight = nn.Parameter(initial)
        else:
            self.register_buffer("blend_weight", initial)
        self.gamma_init = (1.0 if weight_init == 0 else 0.0) if gamma_init is None else gamma_init
        self.reset_parameters(init_std)

    def reset_parameters(self, init_std: float = 0.01) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=init_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if getattr(self.out_norm, "weight", None) is not None:
            nn.init.constant_(self.out_norm.weight, self.gamma_init)
        if getattr(self.out_norm, "bias", None) is not None:
            nn.init.zeros_(self.out_norm.bias)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        bias = state_dict.pop(prefix + "out_conv.bias", None)
        if bias is not None and torch.any(bias != 0):
            # BN(conv(y) + b) with running mean m equals BN(conv(y)) with running mean m - b.
            mean_key = prefix + "out_norm.running_mean"
            if mean_key not in state_dict:
                raise ValueError(
                    f"{prefix}out_conv.bias of an older checkpoint is non-zero and W_z's norm "
                    "has no running mean to fold it into; this block's conv has no bias"
                )
            state_dict[mean_key] = state_dict[mean_key] - bias.to(state_dict[mean_key].dtype)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    def nonlocal_response(self, x: torch.Tensor) -> torch.Tensor:
        """The non-local means ``y`` of ``x``.

        Args:
            x: (B, C, H, W).

        Returns:
            (B, C', H, W).
        """
        b, _, h, w = x.shape
        g = _positions(self.pool(self.g(x)))
        if self.mode == "gaussian":
            query = _positions(x)
            # The same tensor as key lets the softmax use the symmetric kernel.
            key = _positions(self.pool(x)) if self.sub_sample else query
        else:
            query, key = _positions(self.theta(x)), _positions(self.pool(self.phi(x)))
        concat_weight = concat_bias = None
        if self.mode == "concatenation":
            concat_weight = self.concat_project.weight.flatten()
            concat_bias = self.concat_project.bias[0]
        y = nonlocal_means(
            self.mode, query, key, g, concat_weight, concat_bias, self.attention_backend
        )
        return y.transpose(1, 2).reshape(b, self.inner_channels, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (B, C, H, W).

        Returns:
            z: (B, C, H, W).
        """
        y = self.out_norm(self.out_conv(self.nonlocal_response(x)))
        return self.blend_weight * y + (1 - self.blend_weight) * x

    def extra_repr(self) -> str:
        learn = isinstance(self.blend_weight, nn.Parameter)
        return (
            f"mode={self.mode}, in_channels={self.in_channels}, inner={self.inner_channels}, "
            f"sub_sample={self.sub_sample}, learn_weight={learn}, gamma_init={self.gamma_init}"
        )


class SubSample2d(nn.Module):
    """2x2 max pooling (odd sizes rounded down) that leaves an axis of size 1 unpooled."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H // 2 or 1, W // 2 or 1)."""
        return F.max_pool2d(x, (min(2, x.shape[-2]), min(2, x.shape[-1])))


def _positions(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    # Fused attention kernels need a unit stride on the channel dimension.
    return x.flatten(2).transpose(1, 2).contiguous()
