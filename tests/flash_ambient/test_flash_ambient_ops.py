"""The plain-torch ops against naive references, scikit-image, PIL and OpenCV."""

import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from d2common.testing import cuda_devices, repo_root
from flash_ambient.ops import (
    attention_map,
    bilateral_filter,
    masked_l1,
    psnr,
    rgb_to_gray_pil,
    ssim_gaussian,
    ssim_gray_uniform7,
    ssim_uniform,
)


def _pair(seed=0, shape=(2, 23, 31, 3)):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-50, 50, shape)
    return a, np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)


def _nchw(a, device="cpu"):
    return torch.from_numpy(a).permute(0, 3, 1, 2).to(device)


@pytest.mark.parametrize("device", cuda_devices())
def test_attention_map_matches_naive_loop(device):
    rng = np.random.default_rng(1)
    amb, fl = rng.random((2, 3, 5, 4)), rng.random((2, 3, 5, 4))
    expected = np.zeros((2, 1, 5, 4))
    for n in range(2):
        for i in range(5):
            for j in range(4):
                expected[n, 0, i, j] = (
                    1 - sum(abs(amb[n, k, i, j] - fl[n, k, i, j]) for k in range(3)) / 3
                )
    got = attention_map(torch.tensor(amb, device=device), torch.tensor(fl, device=device))
    np.testing.assert_allclose(got.cpu().numpy(), expected, atol=1e-12)


def test_attention_map_extremes_and_shape_error():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    assert torch.all(attention_map(white, white) == 1)
    assert torch.all(attention_map(white, black) == 0)
    with pytest.raises(ValueError, match="shapes differ"):
        attention_map(white, torch.ones(1, 3, 2, 3))


def test_masked_l1_hand_computed():
    pred = torch.tensor([[[[0.0, 1.0]]]])
    target = torch.tensor([[[[1.0, 1.0]]]])
    mask = torch.tensor([[[[0.5, 0.0]]]])
    assert masked_l1(pred, target).item() == pytest.approx(0.5)
    # |1 * 0.5 - 0 * 0.5| = 0.5 and |1 * 0 - 1 * 0| = 0 -> mean 0.25
    assert masked_l1(pred, target, mask).item() == pytest.approx(0.25)


@pytest.mark.parametrize("device", cuda_devices())
def test_psnr_and_ssim_match_skimage(device):
    a, b = _pair()
    ta, tb = _nchw(a, device), _nchw(b, device)
    got_psnr = psnr(tb, ta, 255.0).cpu().numpy()
    got_gauss = ssim_gaussian(tb, ta, 255.0).cpu().numpy()
    got_unif = ssim_uniform(tb, ta, 255.0).cpu().numpy()
    for n in range(len(a)):
        assert got_psnr[n] == pytest.approx(
            peak_signal_noise_ratio(a[n], b[n], data_range=255), abs=1e-9
        )
        ref = structural_similarity(
            a[n], b[n], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=255, channel_axis=-1,
        )  # fmt: skip
        assert got_gauss[n] == pytest.approx(ref, abs=1e-9)
        ref = structural_similarity(a[n], b[n], data_range=255, channel_axis=-1)
        assert got_unif[n] == pytest.approx(ref, abs=1e-9)


def test_psnr_float_range_and_identity():
    x = torch.rand(1, 3, 12, 12, dtype=torch.float64)
    y = (x + 0.1).clamp(0, 1)
    ref = peak_signal_noise_ratio(x[0].numpy(), y[0].numpy(), data_range=1.0)
    assert psnr(y, x, 1.0).item() == pytest.approx(ref)
    assert psnr(x, x, 1.0).item() == float("inf")
    assert ssim_gaussian(x, x, 1.0).item() == pytest.approx(1.0)


def test_paper_ssim_is_pil_grayscale_7x7():
    a, b = _pair(3, (1, 20, 17, 3))
    gray_a = np.asarray(Image.fromarray(a[0]).convert("L"))
    gray_b = np.asarray(Image.fromarray(b[0]).convert("L"))
    np.testing.assert_array_equal(rgb_to_gray_pil(_nchw(a))[0, 0].numpy(), gray_a)
    ref = structural_similarity(gray_b, gray_a, data_range=255)  # 7x7 uniform, sample covariance
    assert ssim_gray_uniform7(_nchw(b), _nchw(a)).item() == pytest.approx(ref, abs=1e-9)


def test_ssim_rejects_tiny_images():
    x = torch.zeros(1, 3, 6, 30)
    with pytest.raises(ValueError, match="smaller than the 7x7 window"):
        ssim_uniform(x, x)


@pytest.mark.parametrize("device", cuda_devices())
def test_bilateral_filter_matches_opencv(device):
    a, _ = _pair(5, (1, 19, 26, 3))
    ref = cv2.bilateralFilter(a[0], 7, 102, 7)
    got = bilateral_filter(_nchw(a, device).double(), 7, 7.0, 102.0)
    got = got[0].permute(1, 2, 0).cpu().numpy()
    # OpenCV rounds its float result to uint8.
    assert np.abs(np.rint(got) - ref).max() <= 1
    assert np.abs(got - ref).max() <= 0.5 + 1e-6


def test_ops_import_without_detectron2():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["detectron2"] = None
        import torch
        from flash_ambient.ops import attention_map, psnr, ssim_gaussian
        x = torch.rand(1, 3, 16, 16)
        print(float(attention_map(x, x).mean()), float(ssim_gaussian(x, x, 1.0)[0]))
        assert "flash_ambient.modeling" not in sys.modules
        """
    )
    env = dict(os.environ, PYTHONPATH=str(repo_root() / "projects" / "FlashAmbient"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1.0", "1.0"]
