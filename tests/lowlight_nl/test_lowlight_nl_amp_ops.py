"""The weighted non-local block in mixed precision and on maps with a side of 1.

Precision references are the fp32 block on the same (rounded) input; sub-sampling references
pool by hand (pairwise maxima), independently of the block's own ``pool``.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lowlight_nl.ops import NONLOCAL_MODES, WeightedNonLocal2d
from lowlight_nl.ops.weighted_nonlocal import nonlocal_means, softmax_attention

try:
    from d2common.testing import cuda_devices
except ImportError:  # detectron2 absent: the op still runs on every torch device

    def cuda_devices():
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


SOFTMAX_MODES = ("embedded_gaussian", "gaussian")
# (mode, backend) of every kernel the block can run; symmetric needs the Gaussian form's key = x.
CASES = [(m, b) for m in SOFTMAX_MODES for b in ("auto", "sdpa", "chunked")]
CASES += [("gaussian", "symmetric"), ("dot_product", "auto"), ("concatenation", "auto")]
# Worst-case output error of a block relative to the largest |output| of the fp32 block: bf16
# keeps 8 mantissa bits (0.4%), fp16 11; a few roundings accumulate along a forward.
REL_TOL = {torch.bfloat16: 4e-2, torch.float16: 1e-2}


def _block(mode, backend, sub_sample, channels=8, dtype=torch.float32, device="cpu"):
    torch.manual_seed(0)
    block = WeightedNonLocal2d(
        channels,
        mode=mode,
        sub_sample=sub_sample,
        weight_init=0.5,
        attention_backend=backend,
        norm=lambda c: nn.GroupNorm(2, c),
    )
    nn.init.ones_(block.out_norm.weight)  # a live W_z, so that y reaches the output
    for conv in (m for m in block.modules() if isinstance(m, nn.Conv2d)):
        nn.init.normal_(conv.weight, std=0.3)
    return block.to(device, dtype)


def _rel_err(out, ref):
    return ((out.float() - ref.float()).abs().max() / ref.float().abs().max()).item()


def _autocast_dtypes(device):
    return [torch.bfloat16] if device == "cpu" else [torch.float16, torch.bfloat16]


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("low_input", [False, True], ids=["fp32_input", "low_input"])
@pytest.mark.parametrize("sub_sample", [False, True])
@pytest.mark.parametrize("mode,backend", CASES)
def test_block_under_autocast(mode, backend, sub_sample, low_input, device):
    if backend == "symmetric" and sub_sample:
        pytest.skip("the symmetric kernel needs the keys to be the queries")
    for dtype in _autocast_dtypes(device):
        block = _block(mode, backend, sub_sample, device=device)
        x = torch.randn(2, 8, 7, 6, device=device)
        if low_input:  # e.g. the output of a previous autocast layer
            x = x.to(dtype)
        ref = block(x.float())
        x.requires_grad_(True)
        with torch.autocast(device, dtype=dtype):
            out = block(x)
        assert out.shape == ref.shape
        assert _rel_err(out, ref) < REL_TOL[dtype], (mode, backend, dtype)
        out.float().square().sum().backward()
        for name, p in block.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("sub_sample", [False, True])
@pytest.mark.parametrize("mode,backend", CASES)
def test_block_in_low_precision(mode, backend, sub_sample, dtype, device):
    if backend == "symmetric" and sub_sample:
        pytest.skip("the symmetric kernel needs the keys to be the queries")
    ref_block = _block(mode, backend, sub_sample, device=device)
    block = _block(mode, backend, sub_sample, dtype=dtype, device=device)
    x = torch.randn(2, 8, 7, 6, device=device).to(dtype)
    out = block(x)
    assert out.dtype == dtype
    assert _rel_err(out, ref_block(x.float())) < REL_TOL[dtype]
    out.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in block.parameters() if p.grad is not None)


@pytest.mark.parametrize("backend", ["sdpa", "chunked", "symmetric"])
def test_attention_with_mixed_input_dtypes(backend):
    torch.manual_seed(0)
    x = torch.randn(2, 20, 6)
    v = torch.randn(2, 20, 4).to(torch.bfloat16)
    ref = torch.softmax(x @ x.transpose(1, 2), dim=-1) @ v.float()
    out = softmax_attention(x, x, v, backend)
    assert out.dtype == torch.float32  # the promoted dtype outside autocast
    assert _rel_err(out, ref) < 1e-5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = softmax_attention(x, x, v, backend)
    assert low.dtype == torch.bfloat16  # autocast's dtype inside it
    # sdpa rounds q and k to bf16 (logits off by about 1%); the BLAS kernels compute in fp32.
    assert _rel_err(low, ref) < (REL_TOL[torch.bfloat16] if backend == "sdpa" else 1e-2)


def test_concatenation_sums_stay_fp32_under_autocast():
    # Large suffix sums of g cancel against u * S_g: in bf16 the result would be off by far more.
    torch.manual_seed(0)
    query, key = torch.randn(1, 300, 4), torch.randn(1, 300, 4)
    g = 10 + torch.randn(1, 300, 3)
    weight, bias = torch.randn(8), torch.tensor(0.1)
    ref = nonlocal_means("concatenation", query, key, g, weight, bias)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = nonlocal_means("concatenation", query, key, g, weight, bias)
    assert out.dtype == torch.bfloat16
    # Only the final rounding to bf16 remains.
    assert _rel_err(out, ref) < 2**-8


def _pairwise_max(t):
    """Hand-made 2x2 max pooling (odd sides rounded down; a side of 1 left as it is)."""
    if t.shape[-2] > 1:
        h = t.shape[-2] // 2 * 2
        t = torch.maximum(t[..., 0:h:2, :], t[..., 1:h:2, :])
    if t.shape[-1] > 1:
        w = t.shape[-1] // 2 * 2
        t = torch.maximum(t[..., 0:w:2], t[..., 1:w:2])
    return t


def _reference(block, x):
    """The non-local means of ``block`` with explicit N x M affinities and hand-pooled keys."""
    b, _, h, w = x.shape
    flat = lambda t: t.flatten(2).transpose(1, 2)  # noqa: E731
    g = flat(_pairwise_max(F.conv2d(x, block.g.weight, block.g.bias)))
    if block.mode == "gaussian":
        theta, phi = flat(x), flat(_pairwise_max(x))
    else:
        theta = flat(F.conv2d(x, block.theta.weight, block.theta.bias))
        phi = flat(_pairwise_max(F.conv2d(x, block.phi.weight, block.phi.bias)))
    m = phi.shape[1]
    if block.mode in SOFTMAX_MODES:
        f = torch.softmax(theta @ phi.transpose(1, 2), dim=-1)
    elif block.mode == "dot_product":
        f = theta @ phi.transpose(1, 2) / m
    else:
        e = theta.shape[-1]
        weight = block.concat_project.weight.flatten()
        u = theta @ weight[:e] + block.concat_project.bias[0]
        f = torch.relu(u[:, :, None] + (phi @ weight[e:])[:, None, :]) / m
    return (f @ g).transpose(1, 2).reshape(b, -1, h, w), m


@pytest.mark.parametrize("shape", [(1, 5), (6, 1), (1, 1), (3, 5)])
@pytest.mark.parametrize("mode", NONLOCAL_MODES)
def test_sub_sampling_on_maps_with_a_side_of_one(mode, shape):
    block = _block(mode, "auto", sub_sample=True).double()
    x = torch.randn(2, 8, *shape, dtype=torch.float64)
    ref, num_keys = _reference(block, x)
    assert num_keys == max(1, shape[0] // 2) * max(1, shape[1] // 2)
    assert torch.allclose(block.nonlocal_response(x), ref, atol=1e-10)
    block = _block(mode, "auto", sub_sample=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = block(x.float().requires_grad_(True))
    z.float().sum().backward()
    assert z.shape == (2, 8) + shape and torch.isfinite(z).all()
