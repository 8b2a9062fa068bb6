"""Discriminators: the authors' 5-level strided net and pix2pix's 70x70 PatchGAN."""

import torch
from detectron2.config import configurable
from torch import nn

from .registry import FLASH_AMBIENT_DISCRIMINATOR_REGISTRY


def _in_channels(cfg):
    return 6 if cfg.MODEL.FLASH_AMBIENT.DISCRIMINATOR.CONDITIONAL else 3


class Float32BatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose statistics and normalisation are computed in float32.

    Under bf16 / fp16 autocast the batch statistics of a few values (a discriminator's coarsest
    levels: batch 2 at 1x1) lose their precision and the backward pass can overflow; the output
    goes back to the input's dtype. Same parameters and state dict as ``BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


@FLASH_AMBIENT_DISCRIMINATOR_REGISTRY.register()
class FlashAmbientStridedDiscriminator(nn.Module):
    """The discriminator of the authors' code (not a PatchGAN).

    Five stride-2 3x3 convolutions (64 -> 1024 channels), BatchNorm on all but the first,
    LeakyReLU(0.01), then a 3x3 conv to one channel: 7x7 logits for a 224x224 input.
    """

    @configurable
    def __init__(self, *, in_channels: int = 3, base_channels: int = 64):
        super().__init__()
        layers, ch = [], in_channels
        for i in range(5):
            out = base_channels * 2**i
            layers.append(nn.Conv2d(ch, out, 3, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(Float32BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.01, True))
            ch = out
        layers.append(nn.Conv2d(ch, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, cfg):
        return {
            "in_channels": _in_channels(cfg),
            "base_channels": cfg.MODEL.FLASH_AMBIENT.DISCRIMINATOR.BASE_CHANNELS,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 1, ceil(H / 32), ceil(W / 32)) logits."""
        return self.net(x)


@FLASH_AMBIENT_DISCRIMINATOR_REGISTRY.register()
class FlashAmbientPatchGAN(nn.Module):
    """pix2pix's 70x70 PatchGAN: 4x4 convs 64 (s2) -> 128 (s2) -> 256 (s2) -> 512 (s1) -> 1 (s1).

    BatchNorm on all but the first layer, LeakyReLU(0.2). Conditional use (``in_channels=6``)
    sees ``cat(I_f, image)``.
    """

    @configurable
    def __init__(self, *, in_channels: int = 6, base_channels: int = 64):
        super().__init__()
        b = base_channels
        spec = [(in_channels, b, 2, False), (b, 2 * b, 2, True), (2 * b, 4 * b, 2, True)]
        spec += [(4 * b, 8 * b, 1, True)]
        layers = []
        for cin, cout, stride, norm in spec:
            layers.append(nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=not norm))
            if norm:
                layers.append(Float32BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(nn.Conv2d(8 * b, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, cfg):
        return {
            "in_channels": _in_channels(cfg),
            "base_channels": cfg.MODEL.FLASH_AMBIENT.DISCRIMINATOR.BASE_CHANNELS,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 1, H / 8 - 2, W / 8 - 2) logits (30x30 at 256x256)."""
        return self.net(x)
