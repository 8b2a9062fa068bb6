"""FlashAmbient ops with half / bfloat16 inputs and under autocast (references: the fp32 ops,
themselves checked against OpenCV and naive loops in test_flash_ambient_ops.py)."""

import pytest
import torch

from d2common.testing import cuda_devices
from flash_ambient.ops import attention_map, bilateral_filter, masked_l1

LOW = [torch.float16, torch.bfloat16]


def _images(seed=0, shape=(2, 3, 17, 23)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("dtype", LOW)
def test_bilateral_filter_of_low_precision_images(dtype, device):
    images = (_images()[0] * 255).to(dtype)
    got = bilateral_filter(images.to(device))
    assert got.dtype == dtype
    want = bilateral_filter(images.float())
    # Computed in fp32 and rounded once: within half a step of ``dtype`` below 256.
    half_step = 128 * torch.finfo(dtype).eps
    torch.testing.assert_close(got.cpu().float(), want, rtol=0, atol=half_step)


@pytest.mark.parametrize("device", cuda_devices())
def test_ops_under_autocast_match_fp32(device):
    ambient, flash = (t.to(device) for t in _images(1))
    low = torch.bfloat16 if device == "cpu" else torch.float16
    want_filter = bilateral_filter(flash * 255)
    want_map = attention_map(ambient, flash)
    with torch.autocast(device, dtype=low):
        got_filter = bilateral_filter(flash * 255)
        got_map = attention_map(ambient, flash)
        loss = masked_l1(flash.to(low), ambient, got_map)
    assert got_filter.dtype == torch.float32
    torch.testing.assert_close(got_filter, want_filter)
    torch.testing.assert_close(got_map, want_map)
    want_loss = masked_l1(flash.to(low).float(), ambient, want_map)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, want_loss)


@pytest.mark.parametrize("dtype", LOW)
def test_attention_map_and_masked_l1_in_low_precision(dtype):
    ambient, flash = (t.to(dtype) for t in _images(2))
    got = attention_map(ambient, flash)
    assert got.dtype == dtype
    want = attention_map(ambient.float(), flash.float())
    torch.testing.assert_close(got.float(), want, rtol=0, atol=2 * torch.finfo(dtype).eps)
    loss = masked_l1(flash, ambient, got)
    want_loss = masked_l1(flash.float(), ambient.float(), want)
    torch.testing.assert_close(loss.float(), want_loss, rtol=4 * torch.finfo(dtype).eps, atol=0)
