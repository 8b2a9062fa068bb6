"""RPN Fusion Step: the RPN sees image features concatenated with the tiled sentence feature."""

from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator import RPN, build_rpn_head
from detectron2.structures import ImageList, Instances
from torch import nn

from .fusion import AuthorsRPNFusion
from .language_fusion import language_channels, tile_language

FUSIONS = ("paper", "authors")


@PROPOSAL_GENERATOR_REGISTRY.register()
class GRMRPN(RPN):
    """detectron2's RPN whose objectness means "an object matching the expression".

    With ``MODEL.GRMNET.RPN_FUSION`` and ``FUSION: paper`` the sentence feature (N, L) is tiled
    over every level in ``in_features`` and concatenated to it, so the head sees C + L channels.
    With ``FUSION: authors`` every level goes through :class:`AuthorsRPNFusion` (C channels).
    """

    @configurable
    def __init__(self, *, fuse_language: bool, fusion: Optional[nn.Module] = None, **kwargs):
        """
        Args:
            fuse_language: condition the RPN on the sentence feature.
            fusion: maps ((N, C, H, W), (N, L)) to the head's input; None: concatenation.
            kwargs: arguments of :class:`RPN`; ``head`` must accept the fused channels.
        """
        super().__init__(**kwargs)
        self.fuse_language = fuse_language
        self.fusion = fusion

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        ret = super().from_config(cfg, input_shape)
        g = cfg.MODEL.GRMNET
        if g.FUSION not in FUSIONS:
            raise ValueError(f"MODEL.GRMNET.FUSION={g.FUSION!r}: use one of {FUSIONS}")
        ret["fuse_language"] = bool(g.RPN_FUSION)
        if not g.RPN_FUSION:
            return ret
        if g.FUSION == "authors":
            channels = {input_shape[f].channels for f in cfg.MODEL.RPN.IN_FEATURES}
            ret["fusion"] = AuthorsRPNFusion(
                channels=channels.pop(),
                language_dim=language_channels(cfg),
                mlp_dim=g.FUSION_MLP_DIM,
                norm=g.FUSION_NORM,
            )
            return ret
        extra = language_channels(cfg)
        shapes = [
            ShapeSpec(channels=input_shape[f].channels + extra, stride=input_shape[f].stride)
            for f in cfg.MODEL.RPN.IN_FEATURES
        ]
        ret["head"] = build_rpn_head(cfg, shapes)
        return ret

    def forward(
        self,
        images: ImageList,
        features: Dict[str, torch.Tensor],
        gt_instances: Optional[List[Instances]] = None,
        language: Optional[torch.Tensor] = None,
    ):
        """Like :meth:`RPN.forward`; ``language`` is the (N, L) sentence feature."""
        if self.fuse_language:
            if language is None:
                raise ValueError("GRMRPN fuses language features but got language=None")
            features = dict(features)
            for f in self.in_features:
                if self.fusion is not None:
                    features[f] = self.fusion(features[f], language)
                else:
                    features[f] = torch.cat([features[f], tile_language(language, features[f])], 1)
        return super().forward(images, features, gt_instances)
