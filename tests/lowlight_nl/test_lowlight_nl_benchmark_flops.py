"""The non-local benchmark's FLOP floor against torch's own FLOP counter on the dense block."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from d2common.testing import load_tool
from lowlight_nl.ops import WeightedNonLocal2d


@pytest.mark.parametrize("sub_sample", [False, True])
@pytest.mark.parametrize("mode", ["embedded_gaussian", "gaussian"])
def test_block_flops_match_torch_flop_counter(mode, sub_sample):
    block = WeightedNonLocal2d(
        16, mode=mode, reduction=2, sub_sample=sub_sample, attention_backend="dense"
    )
    x = torch.randn(2, 16, 6, 8)
    with FlopCounterMode(display=False) as counter:
        block(x)
    got = load_tool("benchmark_nonlocal").softmax_block_flops(block, x.shape)
    total = got["projection_gflop"] + got["attention_gflop"]
    assert total * 1e9 == pytest.approx(counter.get_total_flops(), rel=1e-9)
    assert got["floor_over_sdpa"] == pytest.approx(total / got["attention_gflop"])


def test_floor_at_res5_is_far_above_the_target():
    """Hand count, embedded Gaussian at res5 (C = 2048, C' = 1024, N = 25 x 42, batch 1):
    projections 4 * 2 * 2048 * 1024 * 1050, attention 4 * 1050^2 * 1024."""
    block = WeightedNonLocal2d(2048, mode="embedded_gaussian", reduction=2)
    got = load_tool("benchmark_nonlocal").softmax_block_flops(block, (1, 2048, 25, 42))
    assert got["projection_gflop"] * 1e9 == pytest.approx(4 * 2 * 2048 * 1024 * 1050)
    assert got["attention_gflop"] * 1e9 == pytest.approx(4 * 1050**2 * 1024)
    assert got["floor_over_sdpa"] == pytest.approx(1 + 2 * 2048 / 1050)


class _TwoBlocks(torch.nn.Module):
    """A stand-in detector: a convolution, then one block of each softmax form; returns losses."""

    def __init__(self, backend):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.blocks = torch.nn.ModuleList(
            WeightedNonLocal2d(16, mode=mode, reduction=2, attention_backend=backend)
            for mode in ("embedded_gaussian", "gaussian")
        )

    def forward(self, batch):
        x = self.stem(torch.stack([b["image"] for b in batch]))
        for block in self.blocks:
            x = block(x)
        return {"loss": x.square().mean()}


def test_step_flops_equal_torch_counter_on_dense_blocks():
    """With the dense backend torch's counter sees every product; the benchmark's count (SDPA,
    attention by formula x3) must agree with it, and leave the blocks' backend as it was."""
    torch.manual_seed(0)
    model = _TwoBlocks("dense")
    batch = [{"image": torch.randn(3, 6, 10)} for _ in range(2)]
    with FlopCounterMode(display=False) as counter:
        sum(model(batch).values()).backward()
    model.zero_grad()
    got = load_tool("benchmark_nonlocal").step_flops(model, batch)
    assert got == pytest.approx(counter.get_total_flops(), rel=1e-9)
    assert [b.attention_backend for b in model.blocks] == ["dense", "dense"]
    assert all(p.grad is None for p in model.parameters())
