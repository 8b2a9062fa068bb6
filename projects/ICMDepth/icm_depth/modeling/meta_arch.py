"""The ICMDepth meta-architecture: encoder -> depth clusters -> depth, trained with SI_log + ICM."""

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList
from detectron2.utils.events import get_event_storage
from torch import nn

from ..ops import NORMALIZERS, icm_loss, silog_loss
from .backbone import FEATURE_NAMES
from .cluster_decoder import IndependentClusterDecoder, SequentialClusterDecoder

_DECODERS = {"sequential": SequentialClusterDecoder, "independent": IndependentClusterDecoder}


@META_ARCH_REGISTRY.register()
class ICMDepthEstimator(nn.Module):
    """Monocular depth with depth clusters guided by the ICM loss (Kim et al.).

    Inputs (one dict per image, from ``ICMDepthDatasetMapper``): ``image`` (3, H, W) in
    ``INPUT.FORMAT``; for training ``depth`` (H, W) float metres (0 = invalid) and optionally
    ``instance_ids`` (H, W) long (0 = none, 1..M); optional ``height`` / ``width`` for the
    output size. Outputs per image: ``depth`` (height, width) and ``cluster_maps``, the argmax
    over clusters of A1 at each resolution (list of (h_l, w_l) long), as in the paper's Fig. 4.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        decoder: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        silog_weight: float = 10.0,
        variance_focus: float = 0.85,
        icm_weight: float = 1.0,
        icm_levels: Sequence[int] = (1, 2, 3),
        fuzziness: float = 2.0,
        icm_normalizer: str = "matched",
    ):
        """
        Args:
            backbone: gives F1, F2, F3 (strides 16, 8, 4) with D channels.
            decoder: a :class:`SequentialClusterDecoder` or :class:`IndependentClusterDecoder`.
            pixel_mean, pixel_std: input normalisation (3 values each).
            silog_weight, variance_focus: SI_log weight and lambda.
            icm_weight: weight of each L_ICM_l (0: no ICM loss).
            icm_levels: resolutions l in {1, 2, 3} with an ICM loss.
            fuzziness: m of eq. (4).
            icm_normalizer: divisor of eq. (6), "matched" or "clusters"
                (see :func:`icm_depth.ops.matched_cost_mean`).
        """
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.silog_weight = silog_weight
        self.variance_focus = variance_focus
        self.icm_weight = icm_weight
        bad = [lvl for lvl in icm_levels if lvl not in (1, 2, 3)]
        if bad:
            raise ValueError(f"ICM levels must be among 1, 2, 3 (F1, F2, F3), got {bad}")
        self.icm_levels = tuple(icm_levels)
        self.fuzziness = fuzziness
        if icm_normalizer not in NORMALIZERS:
            raise ValueError(
                f"MODEL.ICM_DEPTH.LOSS.ICM_NORMALIZER must be one of {NORMALIZERS}, "
                f"got {icm_normalizer!r}"
            )
        self.icm_normalizer = icm_normalizer

    @classmethod
    def from_config(cls, cfg):
        m = cfg.MODEL.ICM_DEPTH
        if m.CLUSTER_UPDATE not in _DECODERS:
            raise ValueError(
                f"MODEL.ICM_DEPTH.CLUSTER_UPDATE must be one of {sorted(_DECODERS)}, "
                f"got {m.CLUSTER_UPDATE!r}"
            )
        decoder = _DECODERS[m.CLUSTER_UPDATE](
            dim=m.DIM,
            num_clusters=m.NUM_CLUSTERS,
            num_levels=len(FEATURE_NAMES),
            mlp_ratio=m.MLP_RATIO,
            normalize_rows=m.NORMALIZE_ATTENTION_ROWS,
            init_depth=m.INIT_DEPTH,
            num_heads=m.NUM_HEADS,
            position_encoding=m.POSITION_ENCODING,
            iterations=m.ITERATIONS,
        )
        return {
            "backbone": build_backbone(cfg),
            "decoder": decoder,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "silog_weight": m.LOSS.SILOG_WEIGHT,
            "variance_focus": m.LOSS.SILOG_VARIANCE_FOCUS,
            "icm_weight": m.LOSS.ICM_WEIGHT,
            "icm_levels": tuple(m.LOSS.ICM_LEVELS),
            "fuzziness": m.LOSS.FUZZINESS,
            "icm_normalizer": m.LOSS.ICM_NORMALIZER,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict]):
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        divisibility = self.backbone.size_divisibility
        images = ImageList.from_tensors(images, divisibility)
        features = self.backbone(images.tensor)
        levels = [features[name] for name in FEATURE_NAMES]
        valids = [self._valid_cells(images, f.shape[-2:]) for f in levels]
        depth, attns = self.decoder(levels, valids)
        depth = F.interpolate(
            depth, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
        )[:, 0]
        if self.training:
            return self.losses(batched_inputs, depth, attns, [f.shape[-2:] for f in levels])
        return self.postprocess(batched_inputs, images, depth, attns, levels)

    def _valid_cells(self, images: ImageList, level_size) -> torch.Tensor:
        """(B, h * w) bool: cells of a feature map that cover real (unpadded) pixels."""
        padded_h, padded_w = images.tensor.shape[-2:]
        h, w = level_size
        sizes = torch.as_tensor(images.image_sizes, device=self.device, dtype=torch.float32)
        rows = torch.ceil(sizes[:, 0] * h / padded_h)
        cols = torch.ceil(sizes[:, 1] * w / padded_w)
        row_ok = torch.arange(h, device=self.device)[None, :] < rows[:, None]
        col_ok = torch.arange(w, device=self.device)[None, :] < cols[:, None]
        return (row_ok[:, :, None] & col_ok[:, None, :]).flatten(1)

    def _stack_targets(self, batched_inputs, key, size, dtype) -> torch.Tensor:
        out = torch.zeros((len(batched_inputs),) + tuple(size), dtype=dtype, device=self.device)
        for i, x in enumerate(batched_inputs):
            if key in x:
                t = x[key].to(self.device, dtype)
                out[i, : t.shape[0], : t.shape[1]] = t
        return out

    def losses(self, batched_inputs, depth, attns, level_sizes) -> Dict[str, torch.Tensor]:
        """SI_log on valid GT pixels + the ICM loss at each configured resolution (eq. 7)."""
        size = depth.shape[-2:]
        gt = self._stack_targets(batched_inputs, "depth", size, torch.float32)
        valid = gt > 0
        losses = {
            "loss_silog": self.silog_weight * silog_loss(depth, gt, valid, self.variance_focus)
        }
        if self.icm_weight > 0 and self.icm_levels:
            ids = self._stack_targets(batched_inputs, "instance_ids", size, torch.long)
            # Instance counts from the mapper's host tensors: no wait for the device.
            counts = [
                (
                    int(x["instance_ids"].max())
                    if "instance_ids" in x and x["instance_ids"].numel()
                    else 0
                )
                for x in batched_inputs
            ]
            chosen = [lvl - 1 for lvl in self.icm_levels]
            values = icm_loss(
                [attns[i] for i in chosen],
                [tuple(level_sizes[i]) for i in chosen],
                gt,
                ids,
                self.fuzziness,
                self.icm_normalizer,
                num_instances=max(counts),
            )
            for lvl, value in zip(self.icm_levels, values):
                losses[f"loss_icm_f{lvl}"] = self.icm_weight * value
            _log_scalar("icm/instances_per_image", torch.tensor(sum(counts) / len(counts)))
        _log_loss_shares(losses)
        return losses

    def postprocess(self, batched_inputs, images, depth, attns, levels) -> List[Dict]:
        """Crops padding, resizes depth to (height, width), argmax of A1 per level."""
        results = []
        for i, (x, (h, w)) in enumerate(zip(batched_inputs, images.image_sizes)):
            out_h, out_w = x.get("height", h), x.get("width", w)
            d = depth[i : i + 1, None, :h, :w]
            if (out_h, out_w) != (h, w):
                d = F.interpolate(d, size=(out_h, out_w), mode="bilinear", align_corners=False)
            maps = []
            for attn, feature in zip(attns, levels):
                fh, fw = feature.shape[-2:]
                cluster = attn[i].argmax(0).view(fh, fw)
                maps.append(
                    cluster[
                        : _ceil_div(h * fh, images.tensor.shape[-2]),
                        : _ceil_div(w * fw, images.tensor.shape[-1]),
                    ]
                )
            results.append({"depth": d[0, 0], "cluster_maps": maps})
        return results


def _log_scalar(name: str, value: torch.Tensor) -> None:
    try:
        storage = get_event_storage()
    except AssertionError:  # called outside a training loop
        return
    storage.put_scalar(name, float(value))


def _log_loss_shares(losses: Dict[str, torch.Tensor]) -> None:
    """``term_share/<term>``: each weighted term's fraction of the total loss (the balance of
    eq. (7) along training; ``tools/icm_loss_balance.py`` measures gradient shares)."""
    values = {k[len("loss_") :]: float(v.detach()) for k, v in losses.items()}
    total = sum(values.values())
    if total > 0:
        for name, value in values.items():
            _log_scalar(f"term_share/{name}", torch.tensor(value / total))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


__all__: Tuple[str, ...] = ("ICMDepthEstimator",)
