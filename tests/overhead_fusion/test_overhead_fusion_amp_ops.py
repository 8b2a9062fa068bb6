"""Quality fusion with half / bfloat16 logits and views, and under autocast.

Reference: Eqs. 1-2 in float64, sample by sample, on the same (rounded) inputs.
"""

import pytest
import torch

from d2common.testing import cuda_devices
from overhead_fusion.ops import quality_fusion, segment_ids_from_counts, segment_softmax

LOW = [torch.float16, torch.bfloat16]


def _inputs(seed=0, counts=(3, 1, 4)):
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor(counts)
    total = int(counts.sum())
    views = torch.rand(total, 3, 5, 6, generator=g)
    logits = torch.randn(total, 1, 5, 6, generator=g) * 3
    return views, logits, counts


def _reference(views, logits, counts):
    """float64 Eqs. 1-2, one sample at a time."""
    fused, weights, start = [], [], 0
    for n in counts.tolist():
        w = logits[start : start + n].double().softmax(dim=0)
        fused.append((w * views[start : start + n].double()).sum(0))
        weights.append(w)
        start += n
    return torch.stack(fused), torch.cat(weights)


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("dtype", LOW)
def test_low_precision_logits_give_fp32_weights_under_autocast(dtype, device):
    views, logits, counts = _inputs()
    logits = logits.to(dtype)  # what a quality net returns under autocast
    ids = segment_ids_from_counts(counts).to(device)
    low = torch.bfloat16 if device == "cpu" else torch.float16
    with torch.autocast(device, dtype=low):
        fused, weights = quality_fusion(views.to(device), logits.to(device), ids, len(counts))
    assert fused.dtype == weights.dtype == torch.float32
    want_fused, want_weights = _reference(views, logits, counts)
    # Only fp32 roundings: the softmax and the weighted sum did not run in the logits' dtype.
    torch.testing.assert_close(weights.cpu().double(), want_weights, rtol=0, atol=1e-6)
    torch.testing.assert_close(fused.cpu().double(), want_fused, rtol=0, atol=1e-6)
    soft = segment_softmax(logits.to(device), ids, len(counts))
    assert soft.dtype == dtype
    torch.testing.assert_close(soft.cpu().double(), want_weights.to(dtype).double())


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("dtype", LOW)
def test_fusion_of_low_precision_views(dtype, device):
    views, logits, counts = (t.to(dtype) if t.is_floating_point() else t for t in _inputs(1))
    ids = segment_ids_from_counts(counts).to(device)
    fused, weights = quality_fusion(views.to(device), logits.to(device), ids, len(counts))
    assert fused.dtype == weights.dtype == dtype
    want_fused, want_weights = _reference(views, logits, counts)
    # One rounding to the output dtype: half of its relative step (values are at most 1).
    step = torch.finfo(dtype).eps
    torch.testing.assert_close(fused.cpu().double(), want_fused, rtol=0, atol=step)
    torch.testing.assert_close(weights.cpu().double(), want_weights, rtol=0, atol=step)
