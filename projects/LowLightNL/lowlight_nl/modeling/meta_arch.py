"""Mask R-CNN with the paper's training mode (only the backbone learns)."""

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN


@META_ARCH_REGISTRY.register()
class LowLightRCNN(GeneralizedRCNN):
    """``GeneralizedRCNN`` that can freeze everything but the backbone (paper Sec. 5).

    With ``train_backbone_only`` the RPN and the ROI heads keep their (pretrained) weights and
    only the backbone (ResNet, weighted NL blocks, FPN) is optimised. The blocks' ``w``, gamma
    and ``||W_z||`` are logged by ``LowLightTrainer``'s liveness hook.
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

    @classmethod
    def from_config(cls, cfg):
        args = super().from_config(cfg)
        args["train_backbone_only"] = cfg.MODEL.LOWLIGHT_NL.TRAIN_BACKBONE_ONLY
        return args
