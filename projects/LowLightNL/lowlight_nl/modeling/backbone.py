"""ResNet(-FPN) with a weighted non-local block after any subset of res2..res5 (paper Fig. 2)."""

import contextlib
from typing import Dict, List

from detectron2.layers import ShapeSpec, get_norm
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool
from detectron2.modeling.backbone.resnet import ResNet, build_resnet_backbone
from torch import nn

from ..ops import WeightedNonLocal2d

RESNET_STAGES = ("res2", "res3", "res4", "res5")
# Norms whose scale can start at 0 and still learn (FrozenBN cannot).
TRAINABLE_NORMS = ("BN", "SyncBN", "NaiveSyncBN", "nnSyncBN", "GN", "LN")


class WeightedNonLocalResNet(ResNet):
    """detectron2's ResNet with ``WeightedNonLocal2d`` blocks applied to chosen stage outputs.

    The ResNet's own parameters keep their names (``res2.0.conv1.weight`` ...), so detectron2
    and torchvision ResNet checkpoints load unchanged; the blocks live in ``nonlocal_blocks``.
    ``freeze_at`` freezes stem and stages only: a block after a frozen stage still trains.
    """

    def __init__(self, stem, stages, nonlocal_blocks: Dict[str, nn.Module], **kwargs):
        """
        Args:
            stem, stages, kwargs: as for :class:`ResNet`.
            nonlocal_blocks: stage name ("res2" ... "res5") -> block applied to its output.
        """
        super().__init__(stem, stages, **kwargs)
        unknown = sorted(set(nonlocal_blocks) - set(self.stage_names))
        if unknown:
            raise ValueError(
                f"non-local blocks requested after {unknown}, but the ResNet only computes "
                f"{list(self.stage_names)} (check MODEL.RESNETS.OUT_FEATURES)"
            )
        self.nonlocal_blocks = nn.ModuleDict(nonlocal_blocks)
        # False skips every block (see nonlocal_blocks_disabled); not saved in checkpoints.
        self.nonlocal_enabled = True

    def forward(self, x):
        """
        Args:
            x: (N, C, H, W) with H, W multiples of ``size_divisibility``.

        Returns:
            dict[str, Tensor]: the requested stage outputs (after their non-local blocks).
        """
        outputs = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            outputs["stem"] = x
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if self.nonlocal_enabled and name in self.nonlocal_blocks:
                x = self.nonlocal_blocks[name](x)
            if name in self._out_features:
                outputs[name] = x
        return outputs


def build_nonlocal_blocks(cfg, stage_channels: Dict[str, int]) -> Dict[str, WeightedNonLocal2d]:
    """The blocks named by ``cfg.MODEL.LOWLIGHT_NL``, keyed by stage name."""
    nl = cfg.MODEL.LOWLIGHT_NL
    for key in ("REDUCTIONS", "WEIGHT_INITS"):
        if len(nl[key]) != len(RESNET_STAGES):
            raise ValueError(f"MODEL.LOWLIGHT_NL.{key} needs one value per stage res2..res5")
    if nl.NORM not in TRAINABLE_NORMS:
        raise ValueError(
            f"MODEL.LOWLIGHT_NL.NORM={nl.NORM!r}: the scale of W_z's norm gates the non-local "
            f"path and must be trainable; use one of {TRAINABLE_NORMS}"
        )
    blocks = {}
    for stage in nl.STAGES:
        if stage not in RESNET_STAGES:
            raise ValueError(f"MODEL.LOWLIGHT_NL.STAGES: unknown stage {stage!r}")
        if stage not in stage_channels:
            raise ValueError(f"MODEL.LOWLIGHT_NL.STAGES: {stage} is not computed by the ResNet")
        i = RESNET_STAGES.index(stage)
        blocks[stage] = WeightedNonLocal2d(
            stage_channels[stage],
            mode=nl.MODE,
            reduction=nl.REDUCTIONS[i],
            sub_sample=nl.SUB_SAMPLE,
            weight_init=nl.WEIGHT_INITS[i],
            learn_weight=nl.LEARN_WEIGHT,
            norm=lambda channels: get_norm(nl.NORM, channels),
            gamma_init=nl.NORM_GAMMA_INIT,
            attention_backend=nl.ATTENTION_BACKEND,
        )
    return blocks


@BACKBONE_REGISTRY.register()
def build_resnet_wnl_backbone(cfg, input_shape: ShapeSpec) -> WeightedNonLocalResNet:
    """detectron2's ResNet (``MODEL.RESNETS``) plus the weighted NL blocks."""
    resnet = build_resnet_backbone(cfg, input_shape)
    stages = [list(getattr(resnet, name).children()) for name in resnet.stage_names]
    channels = {name: resnet._out_feature_channels[name] for name in resnet.stage_names}
    return WeightedNonLocalResNet(
        resnet.stem,
        stages,
        build_nonlocal_blocks(cfg, channels),
        out_features=resnet._out_features,
    )


@BACKBONE_REGISTRY.register()
def build_resnet_wnl_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """``build_resnet_fpn_backbone`` with :func:`build_resnet_wnl_backbone` below it."""
    return FPN(
        bottom_up=build_resnet_wnl_backbone(cfg, input_shape),
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


def nonlocal_blocks_of(model: nn.Module) -> List[tuple]:
    """(qualified name, block) of every weighted NL block inside ``model``."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WeightedNonLocal2d)]


@contextlib.contextmanager
def nonlocal_blocks_disabled(model: nn.Module):
    """Within the context, every :class:`WeightedNonLocalResNet` inside ``model`` skips its
    blocks (each stage output goes on unchanged), e.g. to measure what the blocks contribute."""
    resnets = [m for m in model.modules() if isinstance(m, WeightedNonLocalResNet)]
    previous = [r.nonlocal_enabled for r in resnets]
    for r in resnets:
        r.nonlocal_enabled = False
    try:
        yield model
    finally:
        for r, enabled in zip(resnets, previous):
            r.nonlocal_enabled = enabled
