"""The attention-guided objective (Eqs. 2-4), weighted in one place."""

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from torch import nn

from ..ops import masked_l1


class FlashAmbientGANLoss:
    """Generator and discriminator losses of the attention-guided cGAN.

    Generator: ``L1_WEIGHT * R_M + ADV_WEIGHT * BCE(D(G(I_f) * M), 1)`` (Eq. 4, lambda =
    ADV_WEIGHT). Discriminator: ``D_LOSS_WEIGHT * (BCE(D(I_a * M), 1) + BCE(D(G(I_f) * M), 0))``.
    A conditional D sees ``cat(I_f, .)``. ``attention_g`` masks the L1 term (R_M), ``attention_d``
    what D sees (A_M, in both networks' losses); ``M`` None in the outputs disables both.
    """

    @configurable
    def __init__(
        self,
        *,
        l1_weight: float = 1.0,
        adv_weight: float = 1.0,
        d_loss_weight: float = 1.0,
        conditional: bool = False,
        attention_g: bool = True,
        attention_d: bool = True,
    ):
        self.attention_g = attention_g
        self.attention_d = attention_d
        self.l1_weight = l1_weight
        self.adv_weight = adv_weight
        self.d_loss_weight = d_loss_weight
        self.conditional = conditional

    @classmethod
    def from_config(cls, cfg):
        m = cfg.MODEL.FLASH_AMBIENT
        return {
            "l1_weight": m.L1_WEIGHT,
            "adv_weight": m.ADV_WEIGHT,
            "d_loss_weight": m.D_LOSS_WEIGHT,
            "conditional": m.DISCRIMINATOR.CONDITIONAL,
            "attention_g": m.ATTENTION_G,
            "attention_d": m.ATTENTION_D,
        }

    def discriminator_input(self, outputs: Dict, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) image -> what D sees: ``image * M``, after ``I_f`` if conditional."""
        if self.attention_d and outputs["attention"] is not None:
            image = image * outputs["attention"]
        if self.conditional:
            image = torch.cat([outputs["flash"], image], dim=1)
        return image

    def generator_losses(self, outputs: Dict, discriminator: Optional[nn.Module] = None):
        """Returns ``{"loss_l1", "loss_g_adv"}`` (the latter only with a discriminator)."""
        mask = outputs["attention"] if self.attention_g else None
        losses = {"loss_l1": self.l1_weight * masked_l1(outputs["fake"], outputs["target"], mask)}
        if discriminator is not None:
            logits = discriminator(self.discriminator_input(outputs, outputs["fake"]))
            losses["loss_g_adv"] = self.adv_weight * _bce(logits, 1.0)
        return losses

    def discriminator_losses(self, outputs: Dict, discriminator: nn.Module):
        """Returns ``{"loss_d_real", "loss_d_fake"}``; the generator gets no gradient."""
        real = discriminator(self.discriminator_input(outputs, outputs["target"]))
        fake = discriminator(self.discriminator_input(outputs, outputs["fake"].detach()))
        return {
            "loss_d_real": self.d_loss_weight * _bce(real, 1.0),
            "loss_d_fake": self.d_loss_weight * _bce(fake, 0.0),
        }


def _bce(logits: torch.Tensor, value: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, value))
