"""Zero-DCE++ (Li, Guo, Loy, TPAMI 2021): a light-weight curve estimator and its curves.

The layout follows the authors' release (``model.py`` of Zero-DCE_extension) so that their
state dict, ``Epoch99.pth``, loads as is: seven depthwise-separable convolutions
``e_conv{1..7}.{depth_conv,point_conv}`` of width 32 with symmetric skip concatenations, a tanh
curve map ``r`` of 3 channels estimated on a ``scale_factor`` times smaller image and upsampled
back, and the quadratic curve applied 8 times with that one map (the ++ version shares it across
iterations).

Sign: the release applies ``x <- x + r (x^2 - x)``, i.e. the paper's ``LE(x) = x + A x (1 - x)``
with ``A = -r``; the release's sign is kept so that its weights brighten.
"""

import torch
import torch.nn.functional as F
from torch import nn

NUM_ITERATIONS = 8  # curve applications (paper: n = 8)
WIDTH = 32  # channels of every hidden layer


class DepthwiseSeparableConv(nn.Module):
    """3x3 depthwise conv (with bias) then 1x1 pointwise conv: ``CSDN_Tem`` of the release."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depth_conv = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels)
        self.point_conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W)."""
        return self.point_conv(self.depth_conv(x))


def apply_curves(x: torch.Tensor, r: torch.Tensor, iterations: int = NUM_ITERATIONS):
    """Applies ``x <- x + r (x^2 - x)`` ``iterations`` times with the same map ``r``.

    Args:
        x: (B, 3, H, W) image in [0, 1].
        r: (B, 3, H, W) curve map in [-1, 1] (0 leaves the image unchanged).

    Returns:
        (B, 3, H, W) enhanced image, in [0, 1] for r in [-1, 1].
    """
    for _ in range(iterations):
        x = x + r * (torch.pow(x, 2) - x)
    return x


class ZeroDCEPP(nn.Module):
    """The Zero-DCE++ curve estimator (``enhance_net_nopool`` of the release).

    Args:
        scale_factor: the curve map is estimated on the image downsampled by this factor
            (bilinear) and upsampled back (bilinear, corners aligned, as the release's
            ``UpsamplingBilinear2d``). The release trains at 1 and tests at 12.
    """

    def __init__(self, scale_factor: int = 1):
        super().__init__()
        if scale_factor < 1:
            raise ValueError(f"scale_factor must be >= 1, got {scale_factor}")
        self.scale_factor = scale_factor
        self.e_conv1 = DepthwiseSeparableConv(3, WIDTH)
        self.e_conv2 = DepthwiseSeparableConv(WIDTH, WIDTH)
        self.e_conv3 = DepthwiseSeparableConv(WIDTH, WIDTH)
        self.e_conv4 = DepthwiseSeparableConv(WIDTH, WIDTH)
        self.e_conv5 = DepthwiseSeparableConv(2 * WIDTH, WIDTH)
        self.e_conv6 = DepthwiseSeparableConv(2 * WIDTH, WIDTH)
        self.e_conv7 = DepthwiseSeparableConv(2 * WIDTH, 3)

    def curve_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) image in [0, 1] -> (B, 3, H, W) curve map r in [-1, 1]."""
        s = self.scale_factor
        height, width = x.shape[-2:]
        if s == 1:
            small = x
        else:
            if height < s or width < s:
                raise ValueError(
                    f"a {height}x{width} image is smaller than the scale factor {s} of Zero-DCE++"
                )
            small = F.interpolate(x, scale_factor=1 / s, mode="bilinear", align_corners=False)
        x1 = F.relu(self.e_conv1(small))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        if s != 1:
            r = F.interpolate(r, size=(height, width), mode="bilinear", align_corners=True)
        return r

    def forward(self, x: torch.Tensor):
        """
        Args:
            x: (B, 3, H, W) RGB image in [0, 1].

        Returns:
            (enhanced (B, 3, H, W), curve map r (B, 3, H, W)).
        """
        r = self.curve_map(x)
        return apply_curves(x, r), r
