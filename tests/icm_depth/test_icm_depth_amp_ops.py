"""ICM attention, ICM loss and SI-log with half / bfloat16 inputs and under autocast.

References: the float64 numpy ICM loss, and float64 recomputations on the same rounded inputs.
"""

import numpy as np
import pytest
import torch

from d2common.testing import cuda_devices
from icm_depth.ops import (
    cluster_update_attention,
    icm_cost,
    icm_loss,
    pixel_cluster_attention,
    silog_loss,
)
from icm_depth.ops.icm_reference import icm_loss_reference

LOW = [torch.float16, torch.bfloat16]


def _autocast_dtype(device):
    return torch.bfloat16 if device == "cpu" else torch.float16


def _scene(seed, batch=2, size=(8, 12), num_instances=3):
    g = torch.Generator().manual_seed(seed)
    depth = torch.rand(batch, *size, generator=g) * 30 + 1
    depth[torch.rand(batch, *size, generator=g) < 0.2] = 0
    ids = torch.randint(0, num_instances + 1, (batch, *size), generator=g)
    return depth, ids


@pytest.mark.parametrize("stack_levels", [False, True])
@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("attn_dtype", [torch.float32] + LOW)
def test_icm_loss_under_autocast_matches_the_float64_reference(attn_dtype, device, stack_levels):
    depth, ids = _scene(0)
    sizes = [(2, 3), (4, 6), (8, 12)]
    g = torch.Generator().manual_seed(1)
    attns = [torch.randn(2, 5, h * w, generator=g).softmax(1).to(attn_dtype) for h, w in sizes]
    with torch.autocast(device, dtype=_autocast_dtype(device)):
        got = icm_loss(
            [a.to(device) for a in attns],
            sizes,
            depth.to(device),
            ids.to(device),
            stack_levels=stack_levels,
        )
    assert all(v.dtype == torch.float32 for v in got)
    # Same costs as float64 on the (rounded) attention: the matmuls ran in fp32, not in autocast.
    want = icm_loss_reference(
        [a.double().numpy() for a in attns], sizes, depth.numpy(), ids.numpy()
    )
    np.testing.assert_allclose([float(v) for v in got], want, rtol=1e-4)


@pytest.mark.parametrize("device", cuda_devices())
def test_icm_cost_is_fp32_under_autocast(device):
    g = torch.Generator().manual_seed(2)
    attn = torch.rand(2, 4, 30, generator=g).to(device)
    memberships = torch.rand(2, 3, 30, generator=g).to(device)
    valid = (torch.rand(2, 30, generator=g) > 0.2).to(device)
    expected = icm_cost(attn.double(), memberships.double(), valid)
    with torch.autocast(device, dtype=_autocast_dtype(device)):
        got = icm_cost(attn, memberships, valid)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def _naive_attention(q, k, dim):
    """float64 softmax(q k^T / sqrt(D)) along ``dim``."""
    return (q.double() @ k.double().transpose(1, 2) / q.shape[-1] ** 0.5).softmax(dim)


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("dtype", LOW)
def test_cluster_attentions_in_low_precision(dtype, device):
    g = torch.Generator().manual_seed(3)
    clusters, pixels = torch.randn(2, 6, 16, generator=g), torch.randn(2, 40, 16, generator=g)
    values = torch.randn(2, 40, 16, generator=g)
    c, p, v = (t.to(device, dtype) for t in (clusters, pixels, values))
    update, a1 = cluster_update_attention(c, p, v)
    assert a1.dtype == torch.float32 and update.dtype == dtype
    # Softmax over the clusters in fp32: every pixel's memberships sum to 1 to fp32 precision.
    torch.testing.assert_close(a1.sum(1), torch.ones(2, 40, device=device), rtol=0, atol=1e-5)
    want = _naive_attention(c.cpu(), p.cpu(), dim=1)
    # Logits come from a low-precision matmul: within a few of its roundings.
    torch.testing.assert_close(a1.cpu().double(), want, rtol=0, atol=3e-2)
    weights = want / want.sum(-1, keepdim=True)
    torch.testing.assert_close(update.cpu().double(), weights @ v.cpu().double(), rtol=0, atol=5e-2)

    update2, a2 = pixel_cluster_attention(p, c, c)
    assert a2.dtype == torch.float32 and update2.dtype == dtype
    torch.testing.assert_close(a2.sum(-1), torch.ones(2, 40, device=device), rtol=0, atol=1e-5)
    torch.testing.assert_close(
        a2.cpu().double(), _naive_attention(p.cpu(), c.cpu(), -1), rtol=0, atol=3e-2
    )


@pytest.mark.parametrize("device", cuda_devices())
def test_cluster_attention_under_autocast_with_fp32_inputs(device):
    g = torch.Generator().manual_seed(4)
    c, p, v = (torch.randn(2, n, 8, generator=g).to(device) for n in (5, 30, 30))
    valid = torch.ones(2, 30, dtype=torch.bool, device=device)
    valid[1, 20:] = False
    ref_update, ref_attn = cluster_update_attention(c, p, v, valid)
    with torch.autocast(device, dtype=_autocast_dtype(device)):
        update, attn = cluster_update_attention(c, p, v, valid)
    assert attn.dtype == torch.float32
    assert (attn[1, :, 20:] == 0).all()
    torch.testing.assert_close(attn, ref_attn, rtol=0, atol=3e-2)
    torch.testing.assert_close(update.float(), ref_update, rtol=0, atol=5e-2)


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("dtype", LOW)
def test_silog_of_low_precision_predictions_is_computed_in_fp32(dtype, device):
    g = torch.Generator().manual_seed(5)
    target = torch.rand(2, 16, 20, generator=g) * 40 + 1
    # Predictions within 1% of the target: SI-log's log differences are then below bf16's step.
    pred = (target * (1 + 0.01 * torch.randn(2, 16, 20, generator=g))).to(dtype)
    valid = torch.rand(2, 16, 20, generator=g) > 0.3
    with torch.autocast(device, dtype=_autocast_dtype(device)):
        got = silog_loss(pred.to(device), target.to(device), valid.to(device))
    assert got.dtype == torch.float32
    x = pred.double().numpy()
    d = np.log(x + 1e-6) - np.log(target.double().numpy() + 1e-6)
    per_image = []
    for b in range(2):
        gb = d[b][valid[b].numpy()]
        per_image.append(np.sqrt(gb.var() + 0.15 * gb.mean() ** 2 + 1e-6))
    np.testing.assert_allclose(float(got), np.mean(per_image), rtol=1e-4)
