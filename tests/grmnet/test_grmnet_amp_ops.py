"""GRM features with half / bfloat16 inputs and under autocast; the saturating cast to fp16."""

import pytest
import torch

from d2common.testing import cuda_devices
from grmnet.ops import grm_features, grm_features_reference, pad_reference_pool, saturating_cast

LOW = [torch.float16, torch.bfloat16]


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)

    def boxes(n):
        xy = torch.rand(n, 2, generator=g) * 160
        return torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 60 + 2], dim=1)

    proposals = [boxes(12), boxes(7)]
    scores = [torch.randn(12, generator=g), torch.randn(7, generator=g)]
    cands = torch.cat([proposals[0][:4], boxes(5), proposals[1][:3], boxes(2)])
    image = torch.tensor([0] * 9 + [1] * 5)
    return cands, image, proposals, scores, torch.tensor([[240.0, 320.0], [200.0, 256.0]])


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("dtype", LOW)
def test_low_precision_boxes_give_the_fp32_features_of_the_rounded_boxes(dtype, device):
    cands, image, proposals, scores, hw = _batch()
    cands, proposals = cands.to(dtype), [p.to(dtype) for p in proposals]
    scores = [s.to(dtype) for s in scores]
    pool = pad_reference_pool([p.to(device) for p in proposals], [s.to(device) for s in scores])
    got = grm_features(cands.to(device), image.to(device), *pool, hw.to(device), top_k=3)
    assert got.dtype == torch.float32
    # The per-RoI reference on the same rounded values, in fp32 throughout.
    expected = grm_features_reference(
        cands.float(), image, [p.float() for p in proposals], [s.float() for s in scores], hw, 3
    )
    torch.testing.assert_close(got.cpu(), expected)


@pytest.mark.parametrize("device", cuda_devices())
def test_autocast_leaves_the_features_in_fp32(device):
    cands, image, proposals, scores, hw = (
        t.to(device) if torch.is_tensor(t) else [x.to(device) for x in t] for t in _batch(1)
    )
    pool = pad_reference_pool(proposals, scores)
    expected = grm_features(cands, image, *pool, hw, top_k=5, manner="distance")
    low = torch.bfloat16 if device == "cpu" else torch.float16
    with torch.autocast(device, dtype=low):
        got = grm_features(cands, image, *pool, hw, top_k=5, manner="distance")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_saturating_cast_keeps_tiny_candidates_finite_in_fp16():
    # A 1 x 1 px candidate against a 400 x 300 reference: area ratio 120000 > fp16's 65504.
    cand = torch.tensor([[10.0, 10.0, 11.0, 11.0]])
    pool = pad_reference_pool([torch.tensor([[0.0, 0.0, 400.0, 300.0]])], [torch.zeros(1)])
    vec = grm_features(cand, torch.tensor([0]), *pool, torch.tensor([[300.0, 400.0]]), top_k=1)
    assert vec.max() == 120000.0
    assert torch.isinf(vec.half()).any()  # what a plain cast would feed the box head
    half = saturating_cast(vec, torch.float16)
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    assert half.max() == torch.finfo(torch.float16).max
    small = vec.abs() < 1000
    torch.testing.assert_close(half[small].float(), vec[small], rtol=1e-3, atol=1e-3)
    # bf16 and fp32 hold the value: nothing is clamped.
    assert saturating_cast(vec, torch.bfloat16).float().max() == pytest.approx(120000.0, rel=4e-3)
    assert torch.equal(saturating_cast(vec, torch.float32), vec)
