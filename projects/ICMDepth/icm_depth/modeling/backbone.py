"""Encoders (detectron2's Swin and ResNet) wrapped to give F1, F2, F3 at D channels."""

from typing import Dict, List

import fvcore.nn.weight_init as weight_init
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, get_norm
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.resnet import build_resnet_backbone
from detectron2.modeling.backbone.swin import SwinTransformer
from torch import nn

# Output names, in the paper's order: F1 (coarsest, 1/4 of H), F2 (1/2 of H), F3 (H = input / 4).
FEATURE_NAMES = ("F1", "F2", "F3")
FEATURE_STRIDES = {"F1": 16, "F2": 8, "F3": 4}


class ICMFeaturePyramid(Backbone):
    """An encoder followed by a top-down pyramid that returns F1, F2, F3 with D channels each.

    The encoder gives four maps at strides 4, 8, 16, 32; laterals (1x1) project them to D, a
    top-down pass adds each coarser map into the next finer one, and a 3x3 conv per output
    gives F1 (stride 16), F2 (stride 8) and F3 (stride 4), the paper's H/4, H/2 and H with
    H = H_in / 4.
    """

    @configurable
    def __init__(self, *, encoder: Backbone, in_features: List[str], dim: int, norm: str = ""):
        """
        Args:
            encoder: a detectron2 backbone with ``in_features`` among its outputs.
            in_features: four output names of ``encoder`` at strides 4, 8, 16, 32.
            dim: D, the channels of F1, F2, F3.
            norm: normalisation of the pyramid convs (detectron2's ``get_norm`` names).
        """
        super().__init__()
        shapes = encoder.output_shape()
        if len(in_features) != 4:
            raise ValueError(f"ICM backbones need 4 encoder features, got {in_features}")
        strides = [shapes[f].stride for f in in_features]
        if strides != [4, 8, 16, 32]:
            raise ValueError(f"encoder features {in_features} have strides {strides}, not 4..32")
        self.encoder = encoder
        self.in_features = list(in_features)
        self.lateral = nn.ModuleList(
            Conv2d(shapes[f].channels, dim, 1, bias=not norm, norm=get_norm(norm, dim))
            for f in in_features
        )
        self.output = nn.ModuleList(
            Conv2d(
                dim, dim, 3, padding=1, bias=not norm, norm=get_norm(norm, dim), activation=F.gelu
            )
            for _ in FEATURE_NAMES
        )
        for conv in list(self.lateral) + list(self.output):
            weight_init.c2_xavier_fill(conv)
        self._out_features = list(FEATURE_NAMES)
        self._out_feature_channels = {name: dim for name in FEATURE_NAMES}
        self._out_feature_strides = dict(FEATURE_STRIDES)

    @classmethod
    def from_config(cls, cfg, input_shape):
        return {
            "encoder": cls.build_encoder(cfg, input_shape),
            "in_features": list(cfg.MODEL.ICM_DEPTH.IN_FEATURES),
            "dim": cfg.MODEL.ICM_DEPTH.DIM,
            "norm": cfg.MODEL.ICM_DEPTH.NECK_NORM,
        }

    @classmethod
    def build_encoder(cls, cfg, input_shape) -> Backbone:
        raise NotImplementedError

    @property
    def size_divisibility(self) -> int:
        return 32

    def forward(self, x) -> Dict[str, torch.Tensor]:
        """x: (B, 3, H_in, W_in), H_in and W_in multiples of 32. Returns {F1, F2, F3}."""
        feats = self.encoder(x)
        top = self.lateral[3](feats[self.in_features[3]])
        outs = {}
        # in_features[2] (stride 16) -> F1, [1] (stride 8) -> F2, [0] (stride 4) -> F3.
        for level, name in zip((2, 1, 0), FEATURE_NAMES):
            lateral = self.lateral[level](feats[self.in_features[level]])
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            outs[name] = self.output[level](top)
        return outs


@BACKBONE_REGISTRY.register()
class ICMSwinBackbone(ICMFeaturePyramid):
    """detectron2's SwinTransformer (``MODEL.ICM_DEPTH.SWIN``) + the F1/F2/F3 pyramid."""

    @classmethod
    def build_encoder(cls, cfg, input_shape):
        s = cfg.MODEL.ICM_DEPTH.SWIN
        if s.DROP_PATH_RATE > 0:
            try:
                import timm  # noqa: F401
            except ImportError as e:
                raise ImportError(
                    "MODEL.ICM_DEPTH.SWIN.DROP_PATH_RATE > 0 needs timm (detectron2's Swin uses "
                    "its DropPath); install timm or set it to 0"
                ) from e
        return SwinTransformer(
            pretrain_img_size=s.PRETRAIN_IMG_SIZE,
            in_chans=input_shape.channels,
            embed_dim=s.EMBED_DIM,
            depths=tuple(s.DEPTHS),
            num_heads=tuple(s.NUM_HEADS),
            window_size=s.WINDOW_SIZE,
            mlp_ratio=s.MLP_RATIO,
            drop_path_rate=s.DROP_PATH_RATE,
            out_indices=(0, 1, 2, 3),
        )


@BACKBONE_REGISTRY.register()
class ICMResNetBackbone(ICMFeaturePyramid):
    """detectron2's ResNet (``MODEL.RESNETS``) + the F1/F2/F3 pyramid (Table V's encoder)."""

    @classmethod
    def build_encoder(cls, cfg, input_shape):
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.RESNETS.OUT_FEATURES = list(cfg.MODEL.ICM_DEPTH.IN_FEATURES)
        return build_resnet_backbone(cfg, input_shape)


__all__ = ["ICMFeaturePyramid", "ICMSwinBackbone", "ICMResNetBackbone"]
