"""Weakly supervised fusion of multiple overhead images: quality net + fusion + segmentation net."""

from typing import Dict, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.utils.events import get_event_storage

from ..ops import mean_fusion, quality_fusion, segment_ids_from_counts
from .unet import UNet

__all__ = ["OverheadFusionNet", "FUSION_MODES", "weighted_cross_entropy"]

FUSION_MODES = ("quality", "mean", "clean")


def weighted_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor, ignore_value: int
) -> torch.Tensor:
    """Eq. 3: class-weighted cross-entropy averaged over the labelled pixels.

    Args:
        logits: (N, C, H, W) raw class scores (log-softmax is applied once, here).
        target: (N, H, W) int64 class ids, ``ignore_value`` where unlabelled.
        class_weights: (C,) alpha_i.

    Returns:
        0-dim loss; a graph-connected zero when no pixel is labelled.
    """
    total = F.cross_entropy(
        logits, target, weight=class_weights, ignore_index=ignore_value, reduction="sum"
    )
    num_labelled = (target != ignore_value).sum().clamp_min(1)
    return total / num_labelled


@META_ARCH_REGISTRY.register()
class OverheadFusionNet(nn.Module):
    """Fuses a variable number of views per sample into one image, then segments it.

    Input: a list of dicts (detectron2's batched inputs), each with
      * "views": (V_i, 3, H, W) float in [0, 1], the noisy images I_1..I_{V_i};
      * "image": (3, H, W) the clean image (only for FUSION "clean" and for diagnostics);
      * "sem_seg": (H, W) int64 labels (training).
    Output at inference: one dict per sample with "sem_seg" (C, H, W) class probabilities,
    "fused" (3, H, W) the fused image F and "quality" (V_i, H, W) the relative quality Q*_j.
    """

    @configurable
    def __init__(
        self,
        *,
        quality_net: nn.Module,
        seg_net: nn.Module,
        fusion: str,
        class_weights: Sequence[float],
        ignore_value: int = 255,
    ):
        """
        Args:
            quality_net: (T, 3, H, W) -> (T, 1, H, W) quality logits Q_j.
            seg_net: (N, 3, H, W) -> (N, C, H, W) class logits.
            fusion: one of FUSION_MODES.
            class_weights: (C,) alpha_i of Eq. 3.
            ignore_value: label excluded from the loss.
        """
        super().__init__()
        if fusion not in FUSION_MODES:
            raise ValueError(
                f"MODEL.OVERHEAD_FUSION.FUSION must be one of {FUSION_MODES}: {fusion}"
            )
        self.quality_net = quality_net
        self.seg_net = seg_net
        self.fusion = fusion
        self.ignore_value = ignore_value
        self.register_buffer(
            "class_weights", torch.tensor(list(class_weights), dtype=torch.float32), False
        )

    @classmethod
    def from_config(cls, cfg):
        c = cfg.MODEL.OVERHEAD_FUSION
        if len(c.CLASS_WEIGHTS) != c.NUM_CLASSES:
            raise ValueError(
                f"MODEL.OVERHEAD_FUSION.CLASS_WEIGHTS has {len(c.CLASS_WEIGHTS)} entries, "
                f"NUM_CLASSES is {c.NUM_CLASSES}"
            )
        # "mean" and "clean" have no quality network, yet keep its weights so that checkpoints of
        # all three fusion modes share one layout.
        quality_net = UNet(3, 1, c.QUALITY_BASE_WIDTH, c.UNET_DEPTH)
        if c.QUALITY_ZERO_INIT:
            # Equal quality logits: fusion starts as the mean and the segmentation loss alone moves
            # it away, instead of starting from random per-view preferences.
            nn.init.zeros_(quality_net.outc.weight)
            nn.init.zeros_(quality_net.outc.bias)
        return {
            "quality_net": quality_net,
            "seg_net": UNet(3, c.NUM_CLASSES, c.SEG_BASE_WIDTH, c.UNET_DEPTH),
            "fusion": c.FUSION,
            "class_weights": c.CLASS_WEIGHTS,
            "ignore_value": c.IGNORE_VALUE,
        }

    @property
    def device(self) -> torch.device:
        return self.class_weights.device

    def fuse(self, views: torch.Tensor, counts: torch.Tensor, clean: torch.Tensor = None):
        """Fuses flat views.

        Args:
            views: (T, 3, H, W) views of N samples, sample i owning ``counts[i]`` consecutive rows.
            counts: (N,) int64.
            clean: (N, 3, H, W) clean images, required for fusion "clean".

        Returns:
            fused (N, 3, H, W), quality (T, 1, H, W).
        """
        segment_ids = segment_ids_from_counts(counts)
        num = len(counts)
        if self.fusion == "quality":
            return quality_fusion(views, self.quality_net(views), segment_ids, num)
        if self.fusion == "mean":
            return mean_fusion(views, segment_ids, num)
        if clean is None:
            raise ValueError('fusion "clean" needs the clean "image" of every input')
        weights = mean_fusion(views, segment_ids, num)[1]
        return clean, weights

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        views, counts, sizes = self._stack_views(batched_inputs)
        clean = None
        if self.fusion == "clean" or (self.training and "image" in batched_inputs[0]):
            clean = self._stack([x["image"] for x in batched_inputs], 0.0)
        fused, quality = self.fuse(views, counts, clean)
        logits = self.seg_net(fused)
        if self.training:
            if "sem_seg" not in batched_inputs[0]:
                raise ValueError('training inputs need "sem_seg" labels')
            target = self._stack([x["sem_seg"] for x in batched_inputs], self.ignore_value).long()
            if clean is not None:
                # The paper's L1: mean over all elements (pixels and channels).
                l1 = (fused.detach() - clean).abs().mean()
                get_event_storage().put_scalar("overhead_fusion/train_fused_l1", float(l1))
            loss = weighted_cross_entropy(logits, target, self.class_weights, self.ignore_value)
            return {"loss_sem_seg": loss}
        return self._postprocess(logits, fused, quality, counts, sizes)

    def _stack_views(self, batched_inputs):
        per_sample = [x["views"] for x in batched_inputs]
        for i, v in enumerate(per_sample):
            if v.dim() != 4 or v.shape[1] != 3 or v.shape[0] < 1:
                raise ValueError(
                    f'input {i}: "views" must be (V>=1, 3, H, W), got {tuple(v.shape)}'
                )
        counts = torch.tensor([v.shape[0] for v in per_sample], device=self.device)
        sizes = [tuple(v.shape[-2:]) for v in per_sample]
        max_h, max_w = max(s[0] for s in sizes), max(s[1] for s in sizes)
        views = torch.cat(
            [F.pad(v, [0, max_w - v.shape[-1], 0, max_h - v.shape[-2]]) for v in per_sample]
        )
        return views.to(self.device, torch.float32, non_blocking=True), counts, sizes

    def _stack(self, tensors, pad_value):
        max_h = max(t.shape[-2] for t in tensors)
        max_w = max(t.shape[-1] for t in tensors)
        padded = [
            F.pad(t, [0, max_w - t.shape[-1], 0, max_h - t.shape[-2]], value=pad_value)
            for t in tensors
        ]
        return torch.stack(padded).to(self.device, non_blocking=True)

    @staticmethod
    def _postprocess(logits, fused, quality, counts, sizes):
        probs = logits.softmax(dim=1)
        quality_per_sample = torch.split(quality[:, 0], counts.tolist())
        return [
            {
                "sem_seg": probs[i, :, :h, :w],
                "fused": fused[i, :, :h, :w],
                "quality": quality_per_sample[i][:, :h, :w],
            }
            for i, (h, w) in enumerate(sizes)
        ]
