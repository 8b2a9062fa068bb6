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
        """Samples of different image sizes are processed in separate groups, never zero-padded
        together: padding would reach into a sample's convolutions and make its output depend on
        its batch-mates. The training loss is Eq. 3 over all labelled pixels of the batch."""
        if self.training and any("sem_seg" not in x for x in batched_inputs):
            raise ValueError('training inputs need "sem_seg" labels')
        groups: Dict[tuple, List[int]] = {}
        for i, x in enumerate(batched_inputs):
            groups.setdefault(tuple(x["views"].shape[-2:]), []).append(i)
        if not self.training:
            outputs = [None] * len(batched_inputs)
            for indices in groups.values():
                for i, out in zip(
                    indices, self._forward_group([batched_inputs[i] for i in indices])
                ):
                    outputs[i] = out
            return outputs
        ce_sum, labelled, l1_sum, l1_count = 0.0, 0, 0.0, 0
        for indices in groups.values():
            g_ce, g_labelled, g_l1, g_count = self._forward_group(
                [batched_inputs[i] for i in indices]
            )
            ce_sum, labelled = ce_sum + g_ce, labelled + g_labelled
            l1_sum, l1_count = l1_sum + g_l1, l1_count + g_count
        if l1_count:
            get_event_storage().put_scalar("overhead_fusion/train_fused_l1", l1_sum / l1_count)
        return {"loss_sem_seg": ce_sum / max(labelled, 1)}

    def _forward_group(self, batched_inputs):
        """One forward pass over samples of one image size.

        Returns:
            inference: one output dict per sample; training: (sum of the weighted cross-entropy,
            labelled pixels, sum of |fused - clean|, its element count) of the group.
        """
        views, counts = self._stack_views(batched_inputs)
        clean = None
        if self.fusion == "clean" or (self.training and "image" in batched_inputs[0]):
            clean = torch.stack([x["image"] for x in batched_inputs]).to(self.device)
        fused, quality = self.fuse(views, counts, clean)
        logits = self.seg_net(fused)
        if not self.training:
            return self._postprocess(logits, fused, quality, counts)
        target = torch.stack([x["sem_seg"] for x in batched_inputs]).to(self.device).long()
        labelled = int((target != self.ignore_value).sum())
        # Eq. 3 normalised over the whole batch: the group's sum, divided once all are in.
        ce_sum = F.cross_entropy(
            logits,
            target,
            weight=self.class_weights,
            ignore_index=self.ignore_value,
            reduction="sum",
        )
        l1_sum, l1_count = 0.0, 0
        if clean is not None:
            # The paper's L1: mean over all elements (pixels and channels).
            l1_sum = float((fused.detach() - clean).abs().sum())
            l1_count = clean.numel()
        return ce_sum, labelled, l1_sum, l1_count

    def _stack_views(self, batched_inputs):
        per_sample = [x["views"] for x in batched_inputs]
        for i, v in enumerate(per_sample):
            if v.dim() != 4 or v.shape[1] != 3 or v.shape[0] < 1:
                raise ValueError(
                    f'input {i}: "views" must be (V>=1, 3, H, W), got {tuple(v.shape)}'
                )
        counts = torch.tensor([v.shape[0] for v in per_sample], device=self.device)
        views = torch.cat(per_sample)
        return views.to(self.device, torch.float32, non_blocking=True), counts

    @staticmethod
    def _postprocess(logits, fused, quality, counts):
        probs = logits.softmax(dim=1)
        quality_per_sample = torch.split(quality[:, 0], counts.tolist())
        return [
            {"sem_seg": probs[i], "fused": fused[i], "quality": quality_per_sample[i]}
            for i in range(len(quality_per_sample))
        ]
