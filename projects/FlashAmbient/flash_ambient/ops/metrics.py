"""Image-quality metrics, batched: PSNR and SSIM (Wang et al.'s Gaussian and the 7x7 uniform form).

Conventions follow scikit-image (``peak_signal_noise_ratio``, ``structural_similarity``) so that
numbers agree with it exactly: SSIM is averaged over the region not affected by borders.
"""

import torch
import torch.nn.functional as F

_K1, _K2 = 0.01, 0.03


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 255.0):
    """Peak signal-to-noise ratio over all channels and pixels of each image.

    Args:
        prediction, target: (N, C, H, W) (any dtype; computed in float64).
        data_range: MAX of the PSNR (255 for uint8, 1.0 for images in [0, 1]).

    Returns:
        (N,) float64 tensor, ``inf`` for identical images.
    """
    diff = prediction.double() - target.double()
    mse = diff.pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim_gaussian(prediction, target, data_range: float = 255.0, sigma: float = 1.5):
    """Wang et al.'s SSIM: 11x11 Gaussian window (sigma 1.5), population covariance.

    Equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range, channel_axis=-1)``.

    Args:
        prediction, target: (N, C, H, W), H and W >= 11.

    Returns:
        (N,) float64 tensor: the mean over channels and pixels.
    """
    radius = int(3.5 * sigma + 0.5)  # scipy.ndimage.gaussian_filter's truncate=3.5
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=prediction.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return _ssim(prediction, target, kernel / kernel.sum(), data_range, cov_norm=1.0)


def ssim_uniform(prediction, target, data_range: float = 255.0, win_size: int = 7):
    """SSIM with a ``win_size`` x ``win_size`` uniform window and sample covariance.

    Equals ``skimage.metrics.structural_similarity`` with its defaults and ``data_range``.

    Args:
        prediction, target: (N, C, H, W).

    Returns:
        (N,) float64 tensor.
    """
    kernel = torch.full((win_size,), 1.0 / win_size, dtype=torch.float64, device=prediction.device)
    npix = win_size * win_size
    return _ssim(prediction, target, kernel, data_range, cov_norm=npix / (npix - 1.0))


def rgb_to_gray_pil(images: torch.Tensor) -> torch.Tensor:
    """PIL's ``convert('L')`` on uint8 RGB: ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``.

    Args:
        images: (N, 3, H, W) integer values in 0..255.

    Returns:
        (N, 1, H, W) uint8.
    """
    v = images.to(torch.int64)
    gray = (v[:, 0] * 19595 + v[:, 1] * 38470 + v[:, 2] * 7471 + 0x8000) >> 16
    return gray[:, None].to(torch.uint8)


def ssim_gray_uniform7(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's SSIM: uint8 RGB -> grayscale (PIL 'L') -> 7x7 uniform SSIM, data range 255.

    Args:
        prediction, target: (N, 3, H, W) uint8 (or integer-valued) RGB.

    Returns:
        (N,) float64 tensor.
    """
    return ssim_uniform(rgb_to_gray_pil(prediction), rgb_to_gray_pil(target), 255.0, 7)


def _ssim(prediction, target, kernel_1d, data_range, cov_norm):
    if prediction.shape != target.shape:
        raise ValueError(f"SSIM: shapes differ, {tuple(prediction.shape)} vs {tuple(target.shape)}")
    n, c, h, w = prediction.shape
    k = kernel_1d.numel()
    if h < k or w < k:
        raise ValueError(f"SSIM: images of {h}x{w} are smaller than the {k}x{k} window")
    x = prediction.double().reshape(n * c, 1, h, w)
    y = target.double().reshape(n * c, 1, h, w)
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (NC, 5, H, W)
    kv = kernel_1d.view(1, 1, k, 1).expand(5, 1, k, 1)
    kh = kernel_1d.view(1, 1, 1, k).expand(5, 1, 1, k)
    # "valid" filtering == skimage's filter-then-crop (win_size - 1) // 2 border pixels.
    filt = F.conv2d(F.conv2d(stacked, kv, groups=5), kh, groups=5)
    ux, uy, uxx, uyy, uxy = filt.unbind(dim=1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return s.reshape(n, c, -1).mean(dim=(1, 2))
