"""The authors' reduced-width U-Net, used both as quality network and as segmentation network."""

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["UNet", "unet_channels"]


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def unet_channels(base_width: int, depth: int):
    """Encoder and decoder widths: (16, 4) -> [16, 32, 64, 128, 128], [64, 32, 16, 16]."""
    encoder = [base_width * 2**k for k in range(depth)] + [base_width * 2 ** (depth - 1)]
    decoder = [base_width * 2 ** (k - 1) if k > 0 else base_width for k in reversed(range(depth))]
    return encoder, decoder


class UNet(nn.Module):
    """U-Net with bilinear up-sampling; inputs of any size (skips are padded to match).

    Widths follow the authors' "1/4" U-Net: with ``base_width=16, depth=4`` the encoder has
    16, 32, 64, 128, 128 channels and the decoder 64, 32, 16, 16, then a 1x1 convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, base_width: int = 16, depth: int = 4):
        """
        Args:
            in_channels: input channels (3 for RGB).
            out_channels: output logits per pixel (1 quality logit, or C class logits).
            base_width: channels of the first level.
            depth: number of 2x down-samplings.
        """
        super().__init__()
        enc, dec = unet_channels(base_width, depth)
        self.inc = _double_conv(in_channels, enc[0])
        self.downs = nn.ModuleList(_double_conv(enc[k], enc[k + 1]) for k in range(depth))
        skips: List[int] = list(reversed(enc[:-1]))
        ups, prev = [], enc[-1]
        for skip, out in zip(skips, dec):
            ups.append(_double_conv(skip + prev, out))
            prev = out
        self.ups = nn.ModuleList(ups)
        self.outc = nn.Conv2d(dec[-1], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, H, W) logits."""
        features = [self.inc(x)]
        for down in self.downs:
            features.append(down(F.max_pool2d(features[-1], 2)))
        y = features.pop()
        for up in self.ups:
            skip = features.pop()
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
            dh, dw = skip.shape[-2] - y.shape[-2], skip.shape[-1] - y.shape[-1]
            y = F.pad(y, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
            y = up(torch.cat([skip, y], dim=1))
        return self.outc(y)
