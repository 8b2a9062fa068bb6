"""The authors' released fusion blocks (``MODEL.GRMNET.FUSION: "authors"``).

The paper (Sec. 3.1) only says that the tiled sentence feature is concatenated with the image
and RoI features; that is the default (``"paper"``, in ``rpn.py`` / ``roi_heads.py``). The
authors' code instead fuses:

- before the RPN: ``[visual (C), tiled MLP(sentence), 8 coordinate channels]`` -> conv-BN-ReLU
  -> conv-BN-ReLU -> L2 normalisation over channels, back to C channels (the RPN head is
  unchanged);
- in the box head: ``[RoI features, tiled sentence, tiled GRM]`` -> conv-BN-ReLU -> L2
  normalisation, back to C channels; the mask head gets the plain RoI features.

Kernel sizes (1x1 then 3x3 before the RPN, 1x1 in the box head) and the coordinate channels'
definition (Hu et al. 2016: cell corners, centre and 1/W, 1/H in [-1, 1]) are ours where the
notes on the code give no detail.
"""

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d, get_norm
from torch import nn

NUM_COORD_CHANNELS = 8


def coordinate_channels(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(8, H, W): per cell ``[x1, y1, x2, y2, cx, cy, 1/W, 1/H]``, coordinates in [-1, 1]."""
    xs = torch.arange(width, device=like.device, dtype=like.dtype)
    ys = torch.arange(height, device=like.device, dtype=like.dtype)
    x1, x2 = xs / width * 2 - 1, (xs + 1) / width * 2 - 1
    y1, y2 = ys / height * 2 - 1, (ys + 1) / height * 2 - 1
    gx = lambda v: v[None, :].expand(height, width)  # noqa: E731
    gy = lambda v: v[:, None].expand(height, width)  # noqa: E731
    ones = torch.ones(height, width, device=like.device, dtype=like.dtype)
    return torch.stack(
        [
            gx(x1),
            gy(y1),
            gx(x2),
            gy(y2),
            gx((x1 + x2) / 2),
            gy((y1 + y2) / 2),
            ones / width,
            ones / height,
        ]
    )


def _conv_bn_relu(cin: int, cout: int, kernel: int, norm: str) -> Conv2d:
    conv = Conv2d(
        cin,
        cout,
        kernel,
        padding=kernel // 2,
        bias=not norm,
        norm=get_norm(norm, cout),
        activation=nn.ReLU(inplace=True),
    )
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


class AuthorsRPNFusion(nn.Module):
    """MLP(sentence) + coordinates + two conv-BN-ReLU blocks + L2 normalisation (one module
    shared by every FPN level, like the RPN head)."""

    def __init__(self, *, channels: int, language_dim: int, mlp_dim: int, norm: str = "BN"):
        """
        Args:
            channels: C, the FPN channels (in and out).
            language_dim: L, channels of the sentence feature.
            mlp_dim: output size of the MLP applied to the sentence feature.
            norm: detectron2 norm name of both blocks.
        """
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(language_dim, mlp_dim), nn.ReLU(inplace=True))
        self.block1 = _conv_bn_relu(channels + mlp_dim + NUM_COORD_CHANNELS, channels, 1, norm)
        self.block2 = _conv_bn_relu(channels, channels, 3, norm)

    def forward(self, feature: torch.Tensor, language: torch.Tensor) -> torch.Tensor:
        """
        Args:
            feature: (N, C, H, W) one FPN level.
            language: (N, L) sentence features.

        Returns:
            (N, C, H, W), unit L2 norm over channels at every position.
        """
        n, _, h, w = feature.shape
        lang = self.mlp(language).to(feature.dtype)
        coords = coordinate_channels(h, w, feature)[None].expand(n, -1, -1, -1)
        x = torch.cat([feature, lang[:, :, None, None].expand(-1, -1, h, w), coords], dim=1)
        return F.normalize(self.block2(self.block1(x)), dim=1)


class AuthorsRoIFusion(nn.Module):
    """conv-BN-ReLU + L2 normalisation of the concatenated box-head inputs."""

    def __init__(self, *, in_channels: int, out_channels: int, norm: str = "BN"):
        """
        Args:
            in_channels: C + L + K * d + 5 (RoI features, sentence, GRM vector).
            out_channels: C, what the box head reads.
            norm: detectron2 norm name.
        """
        super().__init__()
        self.block = _conv_bn_relu(in_channels, out_channels, 1, norm)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        """(R, in_channels, S, S) -> (R, out_channels, S, S), unit L2 norm over channels."""
        return F.normalize(self.block(fused), dim=1)
