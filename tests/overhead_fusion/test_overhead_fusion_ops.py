"""Fusion, artifact synthesis and metric ops against naive references."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy import ndimage

from d2common.testing import cuda_devices, repo_root
from overhead_fusion.ops import (
    ARTIFACT_CLOUD,
    ARTIFACT_NONE,
    ARTIFACT_OCCLUSION,
    apply_artifacts,
    cloud_alpha_masks,
    cloud_profile,
    confusion_matrix,
    gaussian_blur,
    mean_fusion,
    perlin_from_gradients,
    quality_fusion,
    segment_ids_from_counts,
    segment_softmax,
    segmentation_scores,
)


def _naive_fusion(views, logits, counts):
    fused, weights, start = [], [], 0
    for c in counts:
        q = logits[start : start + c]
        w = torch.exp(q) / torch.exp(q).sum(dim=0, keepdim=True)  # Eq. 1
        fused.append((views[start : start + c] * w).sum(dim=0))  # Eq. 2
        weights.append(w)
        start += c
    return torch.stack(fused), torch.cat(weights)


@pytest.mark.parametrize("device", cuda_devices())
def test_quality_fusion_matches_equations_1_2(device):
    torch.manual_seed(0)
    counts = [2, 3, 1, 6]
    views = torch.rand(sum(counts), 3, 7, 9, device=device, dtype=torch.float64)
    logits = 5 * torch.randn(sum(counts), 1, 7, 9, device=device, dtype=torch.float64)
    logits.requires_grad_(True)
    ids = segment_ids_from_counts(torch.tensor(counts, device=device))
    fused, weights = quality_fusion(views, logits, ids, len(counts))
    ref_fused, ref_weights = _naive_fusion(views, logits, counts)
    torch.testing.assert_close(fused, ref_fused)
    torch.testing.assert_close(weights, ref_weights)
    grad = torch.autograd.grad(fused.square().sum(), logits)[0]
    ref_grad = torch.autograd.grad(ref_fused.square().sum(), logits)[0]
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("device", cuda_devices())
def test_segment_softmax_is_stable_and_normalised(device):
    logits = torch.tensor([[1000.0], [999.0], [-1000.0], [5.0]], device=device)
    ids = torch.tensor([0, 0, 1, 1], device=device)
    q = segment_softmax(logits, ids, 2)
    assert torch.isfinite(q).all()
    torch.testing.assert_close(q[0] + q[1], torch.ones_like(q[0]))
    torch.testing.assert_close(q[0, 0], torch.tensor(1 / (1 + math.exp(-1)), device=device))
    torch.testing.assert_close(q[3, 0], torch.tensor(1.0, device=device))


@pytest.mark.parametrize("device", cuda_devices())
def test_mean_fusion_is_the_exact_mean_of_each_sample(device):
    counts = [1, 4, 2]
    views = torch.rand(sum(counts), 3, 5, 5, device=device)
    fused, weights = mean_fusion(views, segment_ids_from_counts(torch.tensor(counts)).to(device), 3)
    expected = torch.stack([c.mean(0) for c in torch.split(views, counts)])
    torch.testing.assert_close(fused, expected)
    assert weights.shape == (7, 1, 5, 5)


def _naive_perlin(grads, height, width):
    res = grads.shape[0] - 1
    out = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            py, px = y * res / height, x * res / width
            iy, ix = int(math.floor(py)), int(math.floor(px))
            fy, fx = py - iy, px - ix

            dots = {}
            for cy in (0, 1):
                for cx in (0, 1):
                    g = grads[iy + cy, ix + cx]
                    dots[cy, cx] = g[0] * (fx - cx) + g[1] * (fy - cy)
            u, v = (6 * t**5 - 15 * t**4 + 10 * t**3 for t in (fx, fy))
            top = dots[0, 0] * (1 - u) + dots[0, 1] * u
            bottom = dots[1, 0] * (1 - u) + dots[1, 1] * u
            out[y, x] = top * (1 - v) + bottom * v
    return out


def test_perlin_matches_scalar_reference():
    gen = torch.Generator().manual_seed(3)
    angles = 2 * math.pi * torch.rand(2, 4, 4, generator=gen)
    grads = torch.stack([angles.cos(), angles.sin()], -1)
    noise = perlin_from_gradients(grads, 12, 15)
    for k in range(2):
        ref = _naive_perlin(grads[k].double().numpy(), 12, 15)
        np.testing.assert_allclose(noise[k].numpy(), ref, atol=1e-5)
    assert noise[:, ::4, ::5].abs().max() < 1e-6  # zero on lattice points


def test_gaussian_blur_matches_scipy():
    img = torch.rand(2, 1, 30, 27, dtype=torch.float64)
    out = gaussian_blur(img, 2.0)
    for k in range(2):
        ref = ndimage.gaussian_filter(img[k, 0].numpy(), 2.0, mode="constant", truncate=3.0)
        np.testing.assert_allclose(out[k, 0].numpy(), ref, atol=1e-10)


def test_cloud_profile_hand_values():
    r = torch.tensor([0.0, 0.49, 0.55, 0.6, 0.62, 0.65, 0.825, 1.0, 1.5])
    noise = torch.full_like(r, 0.5)
    expected = torch.tensor([1.0, 1.0, 0.9, 0.8, 0.8, 0.4, 0.2, 0.0, 0.0])
    torch.testing.assert_close(cloud_profile(r, noise), expected)


@pytest.mark.parametrize("device", cuda_devices())
def test_apply_artifacts_kinds(device):
    gen = torch.Generator(device=device).manual_seed(0)
    images = torch.rand(3, 3, 32, 32, device=device)
    kinds = torch.tensor([ARTIFACT_NONE, ARTIFACT_CLOUD, ARTIFACT_OCCLUSION], device=device)
    textures = torch.ones(3, 3, 32, 32, device=device)
    area = torch.full((3,), 0.5, device=device)
    out, art = apply_artifacts(images, kinds, area, textures, 2.0, gen)
    torch.testing.assert_close(out[0], images[0])
    assert art[0].abs().max() == 0
    torch.testing.assert_close(out[1], art[1] * 1.0 + (1 - art[1]) * images[1])
    assert art[1].max() > 0.9
    torch.testing.assert_close(out[2], images[2] * (1 - art[2]))
    # The authors' corner triangle at area 0.5: legs w, h with w h = 0.5, about a quarter lost.
    assert 0.15 < float(art[2].mean()) < 0.3


def test_artifacts_are_reproducible_from_a_seed():
    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return cloud_alpha_masks(torch.tensor([0.5, 0.5]), 40, 40, 3.0, gen)

    torch.testing.assert_close(run(5), run(5))
    assert (run(5) - run(6)).abs().max() > 0.1


def test_confusion_and_fcn_metrics_hand_computed():
    target = torch.tensor([0, 0, 0, 1, 1, 2, 255])
    pred = torch.tensor([0, 0, 1, 1, 2, 2, 0])
    conf = confusion_matrix(pred, target, 3)
    assert conf.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    s = segmentation_scores(conf)
    iou = [2 / 3, 1 / 3, 1 / 2]
    assert float(s["pixel_acc"]) == pytest.approx(4 / 6)
    np.testing.assert_allclose(s["IoU"].numpy(), iou)
    assert float(s["mIoU"]) == pytest.approx(np.mean(iou))
    assert float(s["fwIoU"]) == pytest.approx(3 / 6 * iou[0] + 2 / 6 * iou[1] + 1 / 6 * iou[2])


def test_metrics_ignore_absent_classes_and_pool_the_whole_set():
    conf = torch.tensor([[5, 0, 0], [0, 0, 0], [1, 0, 2]])
    s = segmentation_scores(conf)
    assert math.isnan(float(s["IoU"][1]))
    assert float(s["mIoU"]) == pytest.approx((5 / 6 + 2 / 3) / 2)
    # One matrix over the set differs from averaging per-batch IoU (the authors' code).
    a, b = confusion_matrix(torch.tensor([1, 1]), torch.tensor([1, 0]), 2), confusion_matrix(
        torch.tensor([0] * 8 + [1]), torch.tensor([0] * 8 + [1]), 2
    )
    pooled = float(segmentation_scores(a + b)["mIoU"])
    per_batch = np.mean([float(segmentation_scores(c)["mIoU"]) for c in (a, b)])
    assert pooled == pytest.approx((8 / 9 + 2 / 3) / 2)
    assert abs(pooled - per_batch) > 0.05


def test_ops_import_without_detectron2():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["detectron2"] = None
        sys.path.insert(0, "projects/OverheadFusion")
        import torch
        from overhead_fusion.ops import apply_artifacts, quality_fusion, segment_ids_from_counts
        v = torch.rand(3, 3, 16, 16)
        out, _ = apply_artifacts(v, torch.tensor([1, 2, 0]), torch.full((3,), 0.5))
        fused, q = quality_fusion(out, torch.randn(3, 1, 16, 16),
                                  segment_ids_from_counts(torch.tensor([2, 1])), 2)
        assert fused.shape == (2, 3, 16, 16)
        assert "detectron2" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
