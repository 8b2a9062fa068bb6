"""RPN Fusion Step: the RPN sees image features concatenated with the tiled sentence feature."""

from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator import RPN, build_rpn_head
from detectron2.structures import ImageList, Instances

from .language_fusion import language_channels, tile_language


@PROPOSAL_GENERATOR_REGISTRY.register()
class GRMRPN(RPN):
    """detectron2's RPN whose objectness means "an object matching the expression".

    With ``MODEL.GRMNET.RPN_FUSION`` the sentence feature (N, L) is tiled over every level in
    ``in_features`` and concatenated to it, so the head sees C + L channels.
    """

    @configurable
    def __init__(self, *, fuse_language: bool, **kwargs):
        """
        Args:
            fuse_language: concatenate the sentence feature to the RPN inputs.
            kwargs: arguments of :class:`RPN`; ``head`` must accept the fused channels.
        """
        super().__init__(**kwargs)
        self.fuse_language = fuse_language

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        ret = super().from_config(cfg, input_shape)
        extra = language_channels(cfg) if cfg.MODEL.GRMNET.RPN_FUSION else 0
        ret["fuse_language"] = extra > 0
        if extra:
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
                features[f] = torch.cat([features[f], tile_language(language, features[f])], 1)
        return super().forward(images, features, gt_instances)
