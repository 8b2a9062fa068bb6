"""Mask R-CNN with the paper's training mode (only the backbone learns) and w diagnostics."""

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.utils.events import get_event_storage

from .backbone import nonlocal_blocks_of


@META_ARCH_REGISTRY.register()
class LowLightRCNN(GeneralizedRCNN):
    """``GeneralizedRCNN`` that can freeze everything but the backbone (paper Sec. 5).

    With ``train_backbone_only`` the RPN and the ROI heads keep their (pretrained) weights and
    only the backbone (ResNet, weighted NL blocks, FPN) is optimised. During training the
    blending weight ``w`` of every weighted NL block is logged as ``wnl/<stage>``.
    """

    @configurable
    def __init__(self, *, train_backbone_only: bool = False, **kwargs):
        """
        Args:
            train_backbone_only: freeze the proposal generator and the ROI heads.
            kwargs: as for :class:`GeneralizedRCNN`.
        """
        super().__init__(**kwargs)
        self.train_backbone_only = train_backbone_only
        if train_backbone_only:
            for module in (self.proposal_generator, self.roi_heads):
                for p in module.parameters():
                    p.requires_grad_(False)
        self._nonlocal_blocks = nonlocal_blocks_of(self.backbone)

    @classmethod
    def from_config(cls, cfg):
        args = super().from_config(cfg)
        args["train_backbone_only"] = cfg.MODEL.LOWLIGHT_NL.TRAIN_BACKBONE_ONLY
        return args

    def forward(self, batched_inputs):
        if self.training and self._nonlocal_blocks:
            storage = get_event_storage()
            for name, block in self._nonlocal_blocks:
                stage = name.rsplit(".", 1)[-1]
                storage.put_scalar(f"wnl/{stage}", float(block.blend_weight), smoothing_hint=False)
        return super().forward(batched_inputs)
