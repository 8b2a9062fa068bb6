"""Plain-torch operators of ICMDepth (no detectron2 import): cluster attention and losses."""

from .cluster_attention import (
    cluster_update_attention,
    pixel_cluster_attention,
    sine_position_encoding,
)
from .depth_losses import silog_loss
from .icm_loss import (
    NORMALIZERS,
    fcm_memberships,
    hungarian_match,
    icm_cost,
    icm_loss,
    instance_median_depth,
    instance_pixels,
    matched_cost_mean,
    pool_memberships,
)
from .icm_reference import icm_loss_reference

__all__ = [
    "NORMALIZERS",
    "cluster_update_attention",
    "pixel_cluster_attention",
    "sine_position_encoding",
    "silog_loss",
    "fcm_memberships",
    "hungarian_match",
    "icm_cost",
    "icm_loss",
    "instance_median_depth",
    "instance_pixels",
    "matched_cost_mean",
    "pool_memberships",
    "icm_loss_reference",
]
