"""LIME and SRIE (Table 1 baselines) against properties stated in their papers, on small images."""

import math

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model

from d2common.testing import plugin_cfg
from flash_ambient.baselines import (
    lime_enhance,
    lime_illumination,
    lime_weights,
    srie_decompose,
    srie_enhance,
)
from flash_ambient.baselines._sparse import weighted_smooth


def _smooth_image(h=12, w=16, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.2 + 0.6 * np.exp(-((yy - 0.4) ** 2 + (xx - 0.6) ** 2) * 4)
    return np.clip(base[..., None] * rng.uniform(0.6, 1.0, (h, w, 3)), 0.0, 1.0)


def _energy_gradient(x, target, weight_h, weight_v, extra=None):
    """d/dx of ||x - target||^2 + sum_d weight_d (D_d x)^2 - 2 <extra, x>, with torch autograd
    and slicing differences (independent of the sparse matrices)."""
    t = torch.tensor(x, requires_grad=True)
    e = ((t - torch.tensor(target)) ** 2).sum()
    e = e + (torch.tensor(weight_h)[:, :-1] * (t[:, 1:] - t[:, :-1]) ** 2).sum()
    e = e + (torch.tensor(weight_v)[:-1] * (t[1:] - t[:-1]) ** 2).sum()
    if extra is not None:
        e = e - 2 * (torch.tensor(extra) * t).sum()
    (grad,) = torch.autograd.grad(e, t)
    return grad.numpy()


@pytest.mark.parametrize("method", ["direct", "cg"])
def test_weighted_smooth_minimises_its_energy(method):
    rng = np.random.default_rng(1)
    target, extra = rng.normal(size=(9, 13)), rng.normal(size=(9, 13))
    w_h, w_v = rng.uniform(0, 50, (9, 13)), rng.uniform(0, 50, (9, 13))
    x = weighted_smooth(target, w_h, w_v, extra, method=method)
    assert np.abs(_energy_gradient(x, target, w_h, w_v, extra)).max() < 1e-7


def test_lime_structure_aware_weights_match_the_formula():
    """W_d(x) = sum_y G(x, y) / (|sum_y G(x, y) grad_d T^(y)| + eps) (strategy III), by loops."""
    t_hat = _smooth_image(8, 10).max(axis=2)
    sigma, eps = 1.0, 1e-3
    radius = int(4 * sigma + 0.5)  # scipy's truncate = 4
    w_h, w_v = lime_weights(t_hat, sigma, eps)
    grads = [np.zeros_like(t_hat), np.zeros_like(t_hat)]
    grads[0][:, :-1] = np.diff(t_hat, axis=1)
    grads[1][:-1] = np.diff(t_hat, axis=0)
    h, w = t_hat.shape
    for grad, got in zip(grads, (w_h, w_v)):
        for y in range(h):
            for x in range(w):
                num = den = 0.0
                for dy in range(-radius, radius + 1):
                    for dx in range(-radius, radius + 1):
                        g = math.exp(-(dy * dy) / (2 * sigma**2)) * math.exp(
                            -(dx * dx) / (2 * sigma**2)
                        )
                        yy, xx = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)
                        num += g
                        den += g * grad[yy, xx]
                assert got[y, x] == pytest.approx(num / num / (abs(den / num) + eps), rel=1e-6)


def test_lime_refinement_solves_the_sped_up_problem():
    image = _smooth_image()
    alpha, sigma, eps = 0.15, 2.0, 1e-3
    t = lime_illumination(image, alpha, sigma, eps)
    t_hat = image.max(axis=2)  # Eq. 3: the initial map is max over R, G, B
    w_h, w_v = lime_weights(t_hat, sigma, eps)
    g_h, g_v = np.zeros_like(t_hat), np.zeros_like(t_hat)
    g_h[:, :-1], g_v[:-1] = np.diff(t_hat, axis=1), np.diff(t_hat, axis=0)
    weights = (alpha * w_h / (np.abs(g_h) + eps), alpha * w_v / (np.abs(g_v) + eps))
    assert np.abs(_energy_gradient(t, t_hat, *weights)).max() < 1e-6
    # The refined map is a smoothed T^: within its range, and smoother.
    assert t_hat.min() - 1e-9 <= t.min() and t.max() <= t_hat.max() + 1e-9
    assert np.abs(np.diff(t, axis=1)).sum() < np.abs(np.diff(t_hat, axis=1)).sum()


def test_lime_enhancement_brightens_and_keeps_flat_images_exact():
    image = _smooth_image()
    out = lime_enhance(image, gamma=0.8)
    assert out.shape == image.shape and (out >= image - 1e-12).all()
    flat = np.full((6, 7, 3), 0.25)
    np.testing.assert_allclose(lime_enhance(flat, gamma=0.8), 0.25 ** (1 - 0.8), rtol=1e-9)


def _textured(h=24, w=32):
    """S = R * L: a checkerboard reflectance (0.5 / 1) under a smooth illumination ramp."""
    yy, xx = np.mgrid[0:h, 0:w]
    reflectance = np.where(((yy // 4) + (xx // 4)) % 2 == 0, 1.0, 0.5)
    illumination = 0.3 + 0.6 * xx / (w - 1)
    return reflectance, illumination, reflectance * illumination


def test_srie_constraints_reconstruction_and_smooth_illumination():
    reflectance, _, value = _textured()
    r_est, l_est, iterations = srie_decompose(value, max_iter=200)
    assert iterations < 200, "converged (relative changes below the tolerance)"
    s = np.clip(value, 0.5 / 255, 1) * 255
    assert r_est.max() <= 1.0 and (l_est >= s - 1e-9).all()  # r <= 0, l >= s
    assert np.abs(np.log(r_est * l_est) - np.log(s)).mean() < 0.05  # R * L ~ S
    # The texture goes to R, not L: across the checkerboard's edges R takes the log 2 jump of
    # the true reflectance and L stays smooth.
    jump = lambda x: np.abs(np.diff(np.log(x), axis=0))  # noqa: E731
    edges = jump(reflectance) > 0
    assert jump(r_est)[edges].mean() > 0.9 * math.log(2)
    assert jump(l_est)[edges].mean() < 0.05 * math.log(2)


def test_srie_enhancement_brightens_dark_images():
    rng = np.random.default_rng(3)
    dark = _smooth_image(16, 20) * 0.4 + rng.uniform(0, 0.02, (16, 20, 3))
    out = srie_enhance(dark, max_iter=30)
    assert out.shape == dark.shape and 0 <= out.min() and out.max() <= 1
    assert out.max(axis=2).mean() > dark.max(axis=2).mean()


@pytest.mark.parametrize("config,method", [("lime_faid", "lime"), ("srie_faid", "srie")])
def test_enhancer_meta_arch(config, method):
    opts = ["MODEL.DEVICE", "cpu", "MODEL.FLASH_AMBIENT.ENHANCER.SRIE_MAX_ITER", 8]
    model = build_model(plugin_cfg(f"configs/FlashAmbient/{config}.yaml", opts)).eval()
    flash = (torch.from_numpy(_smooth_image(16, 20)).permute(2, 0, 1) * 255).round()
    out = model([{"image": flash.to(torch.uint8)}])[0]["ambient"]
    rgb = flash.permute(1, 2, 0).double().numpy() / 255
    expected = lime_enhance(rgb) if method == "lime" else srie_enhance(rgb, max_iter=8)
    torch.testing.assert_close(out.double(), torch.from_numpy(expected).permute(2, 0, 1).double())
    with pytest.raises(RuntimeError, match="--eval-only"):
        model.train()([{"image": flash.to(torch.uint8)}])
