"""Plain-torch operators of LowLightNL (no detectron2 import: usable wherever torch runs)."""

from .weighted_nonlocal import (
    ATTENTION_BACKENDS,
    NONLOCAL_MODES,
    ChunkedSoftmaxAttention,
    SymmetricSoftmaxAttention,
    WeightedNonLocal2d,
    nonlocal_means,
    softmax_attention,
)

__all__ = [
    "ATTENTION_BACKENDS",
    "NONLOCAL_MODES",
    "ChunkedSoftmaxAttention",
    "SymmetricSoftmaxAttention",
    "WeightedNonLocal2d",
    "nonlocal_means",
    "softmax_attention",
]
