"""Generators: the paper's VGG-16 encoder-decoder and the SID U-Net trained from scratch."""

from typing import List, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from torch import nn

from .registry import FLASH_AMBIENT_GENERATOR_REGISTRY

# (convolutions, channel multiplier of BASE_CHANNELS) per VGG-16 stage.
_VGG16_STAGES = ((2, 1), (2, 2), (3, 4), (3, 8), (3, 8))
_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "none": nn.Identity}


def _output_activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"GENERATOR.OUTPUT_ACTIVATION must be one of {sorted(_ACTIVATIONS)}: {name!r}"
        )
    return _ACTIVATIONS[name]()


class VGG16Encoder(nn.Sequential):
    """The 13 convolutions of VGG-16 in torchvision's ``features`` layout (indices 0-29).

    ``encoder.<i>.weight`` is torchvision's ``features.<i>.weight``, so an ImageNet state dict
    loads after renaming (``tools/convert_vgg16.py``). pool5 is not part of it.
    """

    def __init__(self, base_channels: int = 64):
        layers, in_ch = [], 3
        for stage, (num_convs, mult) in enumerate(_VGG16_STAGES):
            if stage > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for _ in range(num_convs):
                layers += [nn.Conv2d(in_ch, base_channels * mult, 3, padding=1), nn.ReLU(True)]
                in_ch = base_channels * mult
        super().__init__(*layers)
        self.stage_channels = [base_channels * m for _, m in _VGG16_STAGES]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """(N, 3, H, W) -> [relu1_2, relu2_2, relu3_3, relu4_3, relu5_3] feature maps."""
        features = []
        for layer in self:
            if isinstance(layer, nn.MaxPool2d):
                features.append(x)
            x = layer(x)
        return features + [x]


UPSAMPLE_MODES = ("transposed", "resize_conv")
# Convolutions per decoder level, deepest first: the mirror of VGG-16's stages 4-1 (the paper's
# "symmetric" decoder) and the authors' ``vgg16_decoder`` (one 256-channel conv fewer).
MIRROR_DECODER_CONVS = (3, 3, 2, 2)
AUTHORS_DECODER_CONVS = (3, 2, 2, 2)


def _check_size(net: nn.Module, images: torch.Tensor) -> None:
    h, w = images.shape[-2:]
    if h < 16 or w < 16:
        raise ValueError(
            f"{type(net).__name__}: images of {w}x{h} pixels are smaller than 16x16, the least "
            "its four 2x poolings need"
        )


def _check_upsample(mode: str) -> str:
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"GENERATOR.UPSAMPLE must be one of {UPSAMPLE_MODES}: {mode!r}")
    return mode


class _UpBlock(nn.Module):
    """Upsampling to the skip's size, concatenation, ``num_convs`` conv+act.

    ``upsample="transposed"``: ConvTranspose2d(kernel, stride 2) (the paper's decoder).
    ``"resize_conv"``: nearest-neighbour resize to the skip's size, then a ``kernel`` x ``kernel``
    conv (odd kernels; 3 for 2) -- every output pixel gets the same number of kernel taps, so
    there is no checkerboard pattern (Odena et al. 2016).
    """

    def __init__(self, in_ch, skip_ch, num_convs, kernel, act, upsample="transposed"):
        super().__init__()
        self.upsample = _check_upsample(upsample)
        if upsample == "transposed":
            padding = 1 if kernel == 3 else 0
            self.up = nn.ConvTranspose2d(in_ch, skip_ch, kernel, stride=2, padding=padding)
            self.max_extra = kernel - 2 * padding  # largest output is 2 * input + max_extra - 1
        else:
            kernel = kernel if kernel % 2 else kernel + 1
            self.up = nn.Conv2d(in_ch, skip_ch, kernel, padding=kernel // 2)
        convs, ch = [], 2 * skip_ch
        for _ in range(num_convs):
            convs += [nn.Conv2d(ch, skip_ch, 3, padding=1), act()]
            ch = skip_ch
        self.convs = nn.Sequential(*convs)

    def forward(self, x, skip):
        target = skip.shape[-2:]
        if self.upsample == "resize_conv":
            x = self.up(F.interpolate(x, size=tuple(target), mode="nearest"))
            return self.convs(torch.cat([x, skip], dim=1))
        reachable = [min(t, 2 * s + self.max_extra - 1) for t, s in zip(target, x.shape[-2:])]
        x = self.up(x, output_size=reachable)
        if reachable != list(target):
            # Odd sizes the transposed conv cannot produce: replicate the last row / column.
            x = F.pad(
                x, (0, target[1] - reachable[1], 0, target[0] - reachable[0]), mode="replicate"
            )
        return self.convs(torch.cat([x, skip], dim=1))


@FLASH_AMBIENT_GENERATOR_REGISTRY.register()
class FlashAmbientVGG16UNet(nn.Module):
    """VGG-16 encoder + symmetric decoder with skips from relu1_2 / relu2_2 / relu3_3 / relu4_3.

    Each decoder level: ConvTranspose2d(3, stride 2) to the skip's size (or resize + conv),
    concatenation, ``decoder_convs`` conv+ReLU (3-3-2-2 mirrors the encoder, the paper's
    "symmetric" decoder; the authors' code has 3-2-2-2), no normalisation; a 3x3 conv to 3
    channels and the output activation end the net. Inputs in [0, 1] without mean / std
    normalisation.
    """

    @configurable
    def __init__(
        self,
        *,
        base_channels: int = 64,
        freeze_encoder: bool = True,
        output_activation: str = "sigmoid",
        decoder_convs: Sequence[int] = MIRROR_DECODER_CONVS,
        upsample: str = "transposed",
    ):
        """
        Args:
            base_channels: channels of the first stage (64 = VGG-16).
            freeze_encoder: disable gradients of the 13 encoder convolutions.
            output_activation: "sigmoid", "tanh" or "none".
            decoder_convs: conv+ReLU per decoder level, deepest (relu4_3's scale) first.
            upsample: "transposed" (the paper) or "resize_conv" (no checkerboard).
        """
        super().__init__()
        decoder_convs = tuple(int(n) for n in decoder_convs)
        if len(decoder_convs) != 4 or min(decoder_convs) < 1:
            raise ValueError(
                "GENERATOR.DECODER_CONVS must list 4 positive conv counts, deepest level first "
                f"(paper {MIRROR_DECODER_CONVS}, authors' code {AUTHORS_DECODER_CONVS}): "
                f"{decoder_convs}"
            )
        self.encoder = VGG16Encoder(base_channels)
        chans = self.encoder.stage_channels
        self.decoder = nn.ModuleList(
            _UpBlock(chans[i + 1], chans[i], decoder_convs[3 - i], 3, nn.ReLU, upsample)
            for i in reversed(range(4))
        )
        self.head = nn.Conv2d(chans[0], 3, 3, padding=1)
        self.activation = _output_activation(output_activation)
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.encoder.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg):
        g = cfg.MODEL.FLASH_AMBIENT.GENERATOR
        return {
            "base_channels": g.BASE_CHANNELS,
            "freeze_encoder": g.FREEZE_ENCODER,
            "output_activation": g.OUTPUT_ACTIVATION,
            "decoder_convs": g.DECODER_CONVS,
            "upsample": g.UPSAMPLE,
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1], H and W >= 16 -> (N, 3, H, W)."""
        _check_size(self, images)
        *skips, x = self.encoder(images)
        for block, skip in zip(self.decoder, reversed(skips)):
            x = block(x, skip)
        return self.activation(self.head(x))


@FLASH_AMBIENT_GENERATOR_REGISTRY.register()
class FlashAmbientSIDUNet(nn.Module):
    """The U-Net of "Learning to See in the Dark" (Chen et al. 2018), Table 2 condition 4.

    Five stages of two 3x3 conv + LeakyReLU(0.2) (32-512 channels), 2x2 max pooling, 2x2
    transposed convolutions, a 1x1 output conv to RGB (instead of SID's 12-channel raw output).
    """

    @configurable
    def __init__(
        self,
        *,
        base_channels: int = 32,
        output_activation: str = "sigmoid",
        upsample: str = "transposed",
    ):
        super().__init__()
        chans = [base_channels * 2**i for i in range(5)]
        self.encoder = nn.ModuleList()
        in_ch = 3
        for ch in chans:
            self.encoder.append(
                nn.Sequential(
                    nn.Conv2d(in_ch, ch, 3, padding=1),
                    nn.LeakyReLU(0.2, True),
                    nn.Conv2d(ch, ch, 3, padding=1),
                    nn.LeakyReLU(0.2, True),
                )
            )
            in_ch = ch
        self.pool = nn.MaxPool2d(2)
        act = lambda: nn.LeakyReLU(0.2, True)  # noqa: E731
        self.decoder = nn.ModuleList(
            _UpBlock(chans[i + 1], chans[i], 2, 2, act, upsample) for i in reversed(range(4))
        )
        self.head = nn.Conv2d(chans[0], 3, 1)
        self.activation = _output_activation(output_activation)

    @classmethod
    def from_config(cls, cfg):
        g = cfg.MODEL.FLASH_AMBIENT.GENERATOR
        return {
            "base_channels": g.BASE_CHANNELS,
            "output_activation": g.OUTPUT_ACTIVATION,
            "upsample": g.UPSAMPLE,
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1], H and W >= 16 -> (N, 3, H, W)."""
        _check_size(self, images)
        skips, x = [], images
        for i, stage in enumerate(self.encoder):
            x = stage(self.pool(x) if i > 0 else x)
            skips.append(x)
        x = skips.pop()
        for block, skip in zip(self.decoder, reversed(skips)):
            x = block(x, skip)
        return self.activation(self.head(x))
