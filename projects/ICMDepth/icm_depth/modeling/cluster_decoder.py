"""Depth-cluster decoders: the paper's sequential update (eq. 1-3) and Table V's method I."""

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import cluster_update_attention, pixel_cluster_attention, sine_position_encoding

POSITION_ENCODINGS = ("none", "sine")


class _MLP(nn.Module):
    """Pre-norm feed-forward block used after each attention update (residual outside)."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        hidden = max(1, int(round(dim * ratio)))
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        )

    def forward(self, x):
        return self.net(x)


class ClusterUpdateLayer(nn.Module):
    """Eq. (1): ``C' = A1 F_v + C`` with C_q, F_k, F_v linear projections of C and F_l."""

    def __init__(
        self, dim: int, mlp_ratio: float = 0.0, normalize_rows: bool = True, num_heads: int = 1
    ):
        super().__init__()
        self.norm_clusters = nn.LayerNorm(dim)
        self.norm_pixels = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.mlp = _MLP(dim, mlp_ratio) if mlp_ratio > 0 else None
        self.normalize_rows = normalize_rows
        self.num_heads = num_heads

    def forward(
        self,
        clusters: torch.Tensor,
        pixels: torch.Tensor,
        valid: Optional[torch.Tensor] = None,
        pos: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """clusters: (B, N, D); pixels: (B, P, D); valid: (B, P) bool or None; pos: (P, D)
        positional encoding added to the pixel keys, or None.

        Returns (C' of shape (B, N, D), A1 of shape (B, N, P)).
        """
        pix = self.norm_pixels(pixels)
        update, attn = cluster_update_attention(
            self.to_q(self.norm_clusters(clusters)),
            self.to_k(pix if pos is None else pix + pos.to(pix.dtype)),
            self.to_v(pix),
            valid,
            self.normalize_rows,
            num_heads=self.num_heads,
        )
        clusters = clusters + update
        if self.mlp is not None:
            clusters = clusters + self.mlp(clusters)
        return clusters, attn


class PixelUpdateLayer(nn.Module):
    """Eq. (2): ``F'_3 = A2 C_v + F_3`` with F_q, C_k, C_v linear projections of F_3 and C'."""

    def __init__(self, dim: int, mlp_ratio: float = 0.0, num_heads: int = 1):
        super().__init__()
        self.norm_pixels = nn.LayerNorm(dim)
        self.norm_clusters = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.mlp = _MLP(dim, mlp_ratio) if mlp_ratio > 0 else None
        self.num_heads = num_heads

    def forward(
        self, pixels: torch.Tensor, clusters: torch.Tensor, pos: Optional[torch.Tensor] = None
    ):
        """pixels: (B, P, D); clusters: (B, N, D); pos: (P, D) added to the pixel queries, or
        None. Returns (F' (B, P, D), A2 (B, P, N))."""
        c = self.norm_clusters(clusters)
        pix = self.norm_pixels(pixels)
        update, attn = pixel_cluster_attention(
            self.to_q(pix if pos is None else pix + pos.to(pix.dtype)),
            self.to_k(c),
            self.to_v(c),
            num_heads=self.num_heads,
        )
        pixels = pixels + update
        if self.mlp is not None:
            pixels = pixels + self.mlp(pixels)
        return pixels, attn


class DepthHead(nn.Module):
    """Eq. (3): ``D = f(F'_3)``, f fully connected; predicts log-depth, returns depth."""

    def __init__(self, dim: int, init_depth: float = 10.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 1)
        nn.init.normal_(self.fc.weight, std=1e-3)
        nn.init.constant_(self.fc.bias, math.log(init_depth))

    def forward(self, pixels: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """pixels: (B, h * w, D) -> positive depth (B, 1, h, w)."""
        log_depth = self.fc(self.norm(pixels)).squeeze(-1)
        return log_depth.exp().view(pixels.shape[0], 1, *size)


def _flatten(feature: torch.Tensor) -> torch.Tensor:
    return feature.flatten(2).transpose(1, 2)


class _ClusterDecoderBase(nn.Module):
    """Options shared by both decoders: heads, pixel positional encoding, update iterations."""

    def _init_options(self, dim, num_levels, mlp_ratio, normalize_rows, options):
        num_heads, position_encoding, iterations = options
        if position_encoding not in POSITION_ENCODINGS:
            raise ValueError(
                f"position encoding must be one of {POSITION_ENCODINGS}, got {position_encoding!r}"
            )
        if iterations < 1:
            raise ValueError(f"at least one cluster-update iteration is needed, got {iterations}")
        self.dim, self.num_heads = dim, num_heads
        self.position_encoding, self.iterations = position_encoding, iterations
        self.updates = nn.ModuleList(
            ClusterUpdateLayer(dim, mlp_ratio, normalize_rows, num_heads) for _ in range(num_levels)
        )
        # Iterations after the first, per level (absent with one: the checkpoint layout of a
        # single update is unchanged).
        self.refinements = None
        if iterations > 1:
            self.refinements = nn.ModuleList(
                nn.ModuleList(
                    ClusterUpdateLayer(dim, mlp_ratio, normalize_rows, num_heads)
                    for _ in range(iterations - 1)
                )
                for _ in range(num_levels)
            )

    def _position(self, feature: torch.Tensor) -> Optional[torch.Tensor]:
        if self.position_encoding == "none":
            return None
        h, w = feature.shape[-2:]
        return sine_position_encoding(h, w, self.dim, feature.device)

    def _update(self, level, clusters, pixels, valid, pos):
        """Eq. (1) at one level, ``iterations`` times; A1 of the last iteration."""
        clusters, attn = self.updates[level](clusters, pixels, valid, pos)
        for layer in self.refinements[level] if self.refinements is not None else ():
            clusters, attn = layer(clusters, pixels, valid, pos)
        return clusters, attn


class SequentialClusterDecoder(_ClusterDecoderBase):
    """One cluster matrix C updated over F1 -> F2 -> F3 (the paper), then eq. (2) and (3)."""

    def __init__(
        self,
        *,
        dim: int,
        num_clusters: int,
        num_levels: int = 3,
        mlp_ratio: float = 0.0,
        normalize_rows: bool = True,
        init_depth: float = 10.0,
        num_heads: int = 1,
        position_encoding: str = "none",
        iterations: int = 1,
    ):
        """
        Args:
            dim: D. num_clusters: N. num_levels: number of feature maps (F1..F3).
            mlp_ratio: MLP width after each attention (0: none).
            normalize_rows: see :func:`icm_depth.ops.cluster_update_attention`.
            init_depth: initial output depth.
            num_heads: attention heads of eq. (1) and (2) (iDisc: 4).
            position_encoding: "none" or "sine" (added to pixel keys / queries; iDisc: sine).
            iterations: cluster updates per level (iDisc: 2); A1 of the last one is returned.
        """
        super().__init__()
        self.clusters = nn.Parameter(torch.randn(num_clusters, dim))
        self._init_options(
            dim, num_levels, mlp_ratio, normalize_rows, (num_heads, position_encoding, iterations)
        )
        self.pixel_update = PixelUpdateLayer(dim, mlp_ratio, num_heads)
        self.head = DepthHead(dim, init_depth)

    def forward(
        self, features: Sequence[torch.Tensor], valids: Sequence[Optional[torch.Tensor]]
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """
        Args:
            features: [F1, F2, F3], each (B, D, h_l, w_l), coarse to fine.
            valids: per level, (B, h_l * w_l) bool (False on padding) or None.

        Returns:
            depth: (B, 1, h_3, w_3) positive depth at F3's resolution.
            attns: per level, A1_l of shape (B, N, h_l * w_l).
        """
        clusters = self.clusters.expand(features[0].shape[0], -1, -1)
        attns = []
        for level, (feature, valid) in enumerate(zip(features, valids)):
            pixels, pos = _flatten(feature), self._position(feature)
            clusters, attn = self._update(level, clusters, pixels, valid, pos)
            attns.append(attn)
        pixels, _ = self.pixel_update(
            _flatten(features[-1]), clusters, self._position(features[-1])
        )
        return self.head(pixels, features[-1].shape[-2:]), attns


class IndependentClusterDecoder(_ClusterDecoderBase):
    """Table V, method I (iDisc-like): C_l per scale, one depth map per scale, averaged."""

    def __init__(
        self,
        *,
        dim: int,
        num_clusters: int,
        num_levels: int = 3,
        mlp_ratio: float = 0.0,
        normalize_rows: bool = True,
        init_depth: float = 10.0,
        num_heads: int = 1,
        position_encoding: str = "none",
        iterations: int = 1,
    ):
        """Arguments as :class:`SequentialClusterDecoder`."""
        super().__init__()
        self.clusters = nn.ParameterList(
            nn.Parameter(torch.randn(num_clusters, dim)) for _ in range(num_levels)
        )
        self._init_options(
            dim, num_levels, mlp_ratio, normalize_rows, (num_heads, position_encoding, iterations)
        )
        self.pixel_updates = nn.ModuleList(
            PixelUpdateLayer(dim, mlp_ratio, num_heads) for _ in range(num_levels)
        )
        self.heads = nn.ModuleList(DepthHead(dim, init_depth) for _ in range(num_levels))

    def forward(self, features, valids):
        """Same contract as :meth:`SequentialClusterDecoder.forward`."""
        finest = features[-1].shape[-2:]
        depths, attns = [], []
        for i, (feature, valid) in enumerate(zip(features, valids)):
            pixels, pos = _flatten(feature), self._position(feature)
            clusters = self.clusters[i].expand(feature.shape[0], -1, -1)
            clusters, attn = self._update(i, clusters, pixels, valid, pos)
            pixels, _ = self.pixel_updates[i](pixels, clusters, pos)
            depth = self.heads[i](pixels, feature.shape[-2:])
            depths.append(F.interpolate(depth, size=finest, mode="bilinear", align_corners=False))
            attns.append(attn)
        return torch.stack(depths).mean(0), attns
