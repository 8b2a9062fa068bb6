"""RoI Fusion Step and the Global Reference Mechanism on top of StandardROIHeads."""

from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import ROI_HEADS_REGISTRY, StandardROIHeads
from detectron2.modeling.roi_heads import build_box_head, build_mask_head
from detectron2.modeling.roi_heads.fast_rcnn import FastRCNNOutputLayers
from detectron2.modeling.roi_heads.roi_heads import select_foreground_proposals
from detectron2.structures import Boxes, ImageList, Instances
from torch import nn

from ..ops import grm_feature_dim, grm_features, pad_reference_pool, saturating_cast, tile_to
from .fusion import AuthorsRoIFusion
from .language_fusion import language_channels

TRAIN_POOLS = ("proposals", "sampled")


@dataclass
class FusionInputs:
    """Per-batch inputs of the RoI fusion: sentence features and the GRM reference pool.

    Attributes:
        language: (N, L) sentence features, or None when RoI fusion is off.
        pool_boxes, pool_scores, pool_valid: (N, P, 4), (N, P), (N, P): post-NMS proposals.
        image_hw: (N, 2) input image sizes (before padding).
    """

    language: Optional[torch.Tensor]
    pool_boxes: torch.Tensor
    pool_scores: torch.Tensor
    pool_valid: torch.Tensor
    image_hw: torch.Tensor


def fusion_channels(cfg) -> int:
    """Channels that the RoI fusion adds to the pooled features: L + K * d + 5."""
    g = cfg.MODEL.GRMNET.GRM
    lang = language_channels(cfg) if cfg.MODEL.GRMNET.ROI_FUSION else 0
    return lang + grm_feature_dim(g.TOP_K, g.RELATIVE, g.ABSOLUTE)


def _authors_fusion(cfg) -> bool:
    return cfg.MODEL.GRMNET.FUSION == "authors"


@ROI_HEADS_REGISTRY.register()
class GRMROIHeads(StandardROIHeads):
    """StandardROIHeads whose box and mask heads see [RoI features, language, GRM] (Fig. 2).

    For every RoI the pooled features (R, C, S, S) are concatenated with the tiled sentence
    feature of its image (R, L, S, S) and the tiled GRM vector (R, K * d + 5, S, S): the K
    references are the top-K post-NMS proposals of the image by objectness (the candidate itself
    excluded), so references may lie anywhere in the sketch. RoIs of instances that the
    expression does not refer to carry no ground truth and are trained as background.
    """

    @configurable
    def __init__(
        self,
        *,
        roi_language_fusion: bool,
        grm_top_k: int,
        grm_relative: str,
        grm_manner: str,
        grm_absolute: bool,
        grm_train_pool: str = "proposals",
        box_fusion: Optional[nn.Module] = None,
        mask_fusion: bool = True,
        **kwargs,
    ):
        """
        Args:
            roi_language_fusion: concatenate the sentence feature to the RoI features.
            grm_top_k: K references per RoI (0: none).
            grm_relative: "corner", "center" or "center3" (see :func:`relative_position`).
            grm_manner: "consistency" or "distance" (see :func:`select_references`).
            grm_absolute: append the RoI's absolute position.
            grm_train_pool: references in training among the RPN "proposals" or the "sampled"
                RoIs in sampling order (the authors' code).
            box_fusion: maps the concatenated box-head inputs to the box head's input (the
                authors' conv-BN-ReLU + L2); None: the concatenation itself.
            mask_fusion: concatenate sentence and GRM to the mask head's inputs (False: the
                mask head sees the plain RoI features, as in the authors' code).
            kwargs: arguments of :class:`StandardROIHeads`; the box and mask heads must accept
                the fused channels.
        """
        super().__init__(**kwargs)
        self.roi_language_fusion = roi_language_fusion
        self.grm_top_k = grm_top_k
        self.grm_relative = grm_relative
        self.grm_manner = grm_manner
        self.grm_absolute = grm_absolute
        if grm_train_pool not in TRAIN_POOLS:
            raise ValueError(f"MODEL.GRMNET.GRM.TRAIN_POOL={grm_train_pool!r}: use {TRAIN_POOLS}")
        self.grm_train_pool = grm_train_pool
        self.box_fusion = box_fusion
        self.mask_fusion = mask_fusion

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        g = cfg.MODEL.GRMNET.GRM
        grm_feature_dim(g.TOP_K, g.RELATIVE, g.ABSOLUTE)  # validates the names early
        if g.MANNER not in ("consistency", "distance"):
            raise ValueError(f"MODEL.GRMNET.GRM.MANNER={g.MANNER!r}: use consistency or distance")
        ret.update(
            roi_language_fusion=cfg.MODEL.GRMNET.ROI_FUSION,
            grm_top_k=g.TOP_K,
            grm_relative=g.RELATIVE,
            grm_manner=g.MANNER,
            grm_absolute=g.ABSOLUTE,
            grm_train_pool=g.TRAIN_POOL,
            mask_fusion=not _authors_fusion(cfg),
        )
        if _authors_fusion(cfg):
            channels = input_shape[cfg.MODEL.ROI_HEADS.IN_FEATURES[0]].channels
            ret["box_fusion"] = AuthorsRoIFusion(
                in_channels=channels + fusion_channels(cfg),
                out_channels=channels,
                norm=cfg.MODEL.GRMNET.FUSION_NORM,
            )
        return ret

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        ret = super()._init_box_head(cfg, input_shape)
        res = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
        channels = input_shape[cfg.MODEL.ROI_HEADS.IN_FEATURES[0]].channels
        if not _authors_fusion(cfg):  # the authors' fusion maps back to the RoI channels
            channels += fusion_channels(cfg)
        ret["box_head"] = build_box_head(cfg, ShapeSpec(channels=channels, height=res, width=res))
        ret["box_predictor"] = FastRCNNOutputLayers(cfg, ret["box_head"].output_shape)
        return ret

    @classmethod
    def _init_mask_head(cls, cfg, input_shape):
        ret = super()._init_mask_head(cfg, input_shape)
        if not ret:
            return ret
        res = cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION
        channels = input_shape[cfg.MODEL.ROI_HEADS.IN_FEATURES[0]].channels
        if not _authors_fusion(cfg):  # the authors' mask head fuses nothing
            channels += fusion_channels(cfg)
        ret["mask_head"] = build_mask_head(cfg, ShapeSpec(channels=channels, width=res, height=res))
        return ret

    def forward(
        self,
        images: ImageList,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
        language: Optional[torch.Tensor] = None,
    ):
        """Like :meth:`StandardROIHeads.forward`; ``language`` is the (N, L) sentence feature."""
        if self.roi_language_fusion and language is None:
            raise ValueError("GRMROIHeads fuses language features but got language=None")
        # References come from the RPN output itself: ground-truth boxes added for sampling
        # below must not become references (they do not exist at test time). TRAIN_POOL
        # "sampled" (the authors' code) replaces this pool in training.
        fusion = self.fusion_inputs(images, proposals, language)
        if self.training:
            assert targets, "'targets' argument is required during training"
            proposals = self.label_and_sample_proposals(proposals, targets)
            if self.grm_train_pool == "sampled":
                fusion = self.sampled_pool(proposals, fusion)
            losses = self._forward_box(features, proposals, fusion)
            losses.update(self._forward_mask(features, proposals, fusion))
            return proposals, losses
        pred_instances = self._forward_box(features, proposals, fusion)
        return self.forward_with_given_boxes(features, pred_instances, fusion), {}

    def fusion_inputs(self, images: ImageList, proposals: List[Instances], language):
        """Collects the sentence features and the padded reference pool of a batch."""
        device = proposals[0].proposal_boxes.tensor.device
        pool_boxes, pool_scores, pool_valid = pad_reference_pool(
            [p.proposal_boxes.tensor.detach() for p in proposals],
            [p.objectness_logits.detach() for p in proposals],
        )
        image_hw = torch.tensor(images.image_sizes, device=device, dtype=torch.float32)
        lang = language if self.roi_language_fusion else None
        return FusionInputs(lang, pool_boxes, pool_scores, pool_valid, image_hw.reshape(-1, 2))

    @staticmethod
    def sampled_pool(sampled: List[Instances], fusion: FusionInputs) -> FusionInputs:
        """The authors' training-time pool: each image's sampled RoIs, ranked in sampling order
        (foreground first), so the top-K references are the first K RoIs other than the
        candidate."""
        boxes = [p.proposal_boxes.tensor.detach() for p in sampled]
        ranks = [-torch.arange(len(b), device=b.device, dtype=b.dtype) for b in boxes]
        pool_boxes, pool_scores, pool_valid = pad_reference_pool(boxes, ranks)
        return FusionInputs(fusion.language, pool_boxes, pool_scores, pool_valid, fusion.image_hw)

    def fuse(self, pooled: torch.Tensor, boxes: List[Boxes], fusion: FusionInputs):
        """(R, C, S, S) pooled features -> (R, C + L + K * d + 5, S, S)."""
        sizes = [len(b) for b in boxes]
        image_idx = torch.repeat_interleave(
            torch.arange(len(sizes), device=pooled.device),
            torch.tensor(sizes, device=pooled.device),
        )
        parts = [pooled]
        if fusion.language is not None:
            parts.append(tile_to(fusion.language.index_select(0, image_idx), pooled.shape[-1]))
        if self.grm_top_k > 0 or self.grm_absolute:
            with torch.no_grad():
                cand = (
                    torch.cat([b.tensor for b in boxes]).detach()
                    if boxes
                    else pooled.new_zeros(0, 4)
                )
                grm = grm_features(
                    cand,
                    image_idx,
                    fusion.pool_boxes,
                    fusion.pool_scores,
                    fusion.pool_valid,
                    fusion.image_hw,
                    top_k=self.grm_top_k,
                    relative=self.grm_relative,
                    manner=self.grm_manner,
                    use_absolute=self.grm_absolute,
                )
            parts.append(tile_to(saturating_cast(grm, pooled.dtype), pooled.shape[-1]))
        return torch.cat(parts, dim=1)

    def forward_with_given_boxes(self, features, instances, fusion: Optional[FusionInputs] = None):
        """Masks for the given ``pred_boxes``; needs the batch's :class:`FusionInputs`."""
        assert not self.training
        if fusion is None:
            raise NotImplementedError(
                "GRMROIHeads needs the sentence features and reference pool of the batch: "
                "call forward() (test-time augmentation is not supported)"
            )
        return self._forward_mask(features, instances, fusion)

    def _forward_box(self, features, proposals, fusion: FusionInputs):
        features = [features[f] for f in self.box_in_features]
        boxes = [x.proposal_boxes for x in proposals]
        box_features = self.fuse(self.box_pooler(features, boxes), boxes, fusion)
        if self.box_fusion is not None:
            box_features = self.box_fusion(box_features)
        predictions = self.box_predictor(self.box_head(box_features))
        del box_features
        if not self.training:
            instances, kept = self.box_predictor.inference(predictions, proposals)
            for inst, idx in zip(instances, kept):
                # which proposal the box head classified (its references are the ones it saw)
                inst.proposal_index = idx
            return instances
        losses = self.box_predictor.losses(predictions, proposals)
        if self.train_on_pred_boxes:
            with torch.no_grad():
                pred = self.box_predictor.predict_boxes_for_gt_classes(predictions, proposals)
                for proposals_per_image, boxes_per_image in zip(proposals, pred):
                    proposals_per_image.proposal_boxes = Boxes(boxes_per_image)
        return losses

    def _forward_mask(self, features, instances, fusion: FusionInputs):
        if not self.mask_on:
            return {} if self.training else instances
        if self.training:
            instances, _ = select_foreground_proposals(instances, self.num_classes)
        features = [features[f] for f in self.mask_in_features]
        boxes = [x.proposal_boxes if self.training else x.pred_boxes for x in instances]
        mask_features = self.mask_pooler(features, boxes)
        if self.mask_fusion:
            mask_features = self.fuse(mask_features, boxes, fusion)
        return self.mask_head(mask_features, instances)
