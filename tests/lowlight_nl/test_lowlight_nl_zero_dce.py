"""Zero-DCE++: the release's state-dict layout, the forward pass, the weight loader and the four
non-reference losses, each against an independent reference written here."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from lowlight_nl.zero_dce import (
    ZeroDCEPP,
    apply_curves,
    color_constancy_loss,
    exposure_loss,
    illumination_smoothness_loss,
    load_zero_dce_weights,
    spatial_consistency_loss,
    zero_dce_losses,
)

# The release's DCE_net, by hand: (in, out) channels of e_conv1..7 (32 wide, cat-skips double
# the input of 5-7), each a depthwise 3x3 conv with bias then a pointwise 1x1 conv with bias.
LAYERS = [(3, 32), (32, 32), (32, 32), (32, 32), (64, 32), (64, 32), (64, 3)]


def release_shapes():
    shapes = {}
    for i, (cin, cout) in enumerate(LAYERS, start=1):
        shapes[f"e_conv{i}.depth_conv.weight"] = (cin, 1, 3, 3)
        shapes[f"e_conv{i}.depth_conv.bias"] = (cin,)
        shapes[f"e_conv{i}.point_conv.weight"] = (cout, cin, 1, 1)
        shapes[f"e_conv{i}.point_conv.bias"] = (cout,)
    return shapes


def release_state_dict(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: 0.2 * torch.randn(s, generator=g) for k, s in release_shapes().items()}


def reference_forward(state, x, scale):
    """The release's forward, written from its description with functional ops."""

    def layer(i, t):
        cin = LAYERS[i - 1][0]
        depth, point = f"e_conv{i}.depth_conv.", f"e_conv{i}.point_conv."
        t = F.conv2d(t, state[depth + "weight"], state[depth + "bias"], padding=1, groups=cin)
        return F.conv2d(t, state[point + "weight"], state[point + "bias"])

    small = x if scale == 1 else F.interpolate(x, scale_factor=1 / scale, mode="bilinear")
    x1 = torch.relu(layer(1, small))
    x2 = torch.relu(layer(2, x1))
    x3 = torch.relu(layer(3, x2))
    x4 = torch.relu(layer(4, x3))
    x5 = torch.relu(layer(5, torch.cat([x3, x4], 1)))
    x6 = torch.relu(layer(6, torch.cat([x2, x5], 1)))
    r = torch.tanh(layer(7, torch.cat([x1, x6], 1)))
    if scale != 1:
        r = torch.nn.UpsamplingBilinear2d(scale_factor=scale)(r)
    y = x
    for _ in range(8):  # the paper's LE(y) = y + A y (1 - y) with A = -r (release's sign)
        y = y + (-r) * y * (1 - y)
    return y, r


def test_state_dict_has_the_release_layout():
    state = ZeroDCEPP().state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == release_shapes()


@pytest.mark.parametrize("scale, size", [(1, (20, 28)), (4, (24, 36)), (12, (36, 48))])
def test_forward_matches_the_release(scale, size):
    state = release_state_dict()
    model = ZeroDCEPP(scale)
    model.load_state_dict(state)
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1)) * 0.3
    y, r = model(x)
    y_ref, r_ref = reference_forward(state, x, scale)
    assert r.shape == x.shape and y.shape == x.shape
    torch.testing.assert_close(r, r_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)


def test_curves_identity_at_zero_and_stay_in_range():
    x = torch.linspace(0, 1, 101).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    assert torch.equal(apply_curves(x, torch.zeros_like(x)), x)
    for value in (-1.0, -0.5, 0.5, 1.0):
        y = apply_curves(x, torch.full_like(x, value))
        assert y.min() >= 0 and y.max() <= 1 + 1e-6
        # the release's r < 0 brightens, r > 0 darkens; end points stay fixed
        assert (torch.sign(y - x)[..., 1:-1] == -torch.sign(torch.tensor(value))).all()
        torch.testing.assert_close(y[..., [0, -1]], x[..., [0, -1]])


def test_small_image_and_bad_scale_are_refused():
    with pytest.raises(ValueError, match="smaller than the scale factor 12"):
        ZeroDCEPP(12)(torch.rand(1, 3, 8, 30))
    with pytest.raises(ValueError, match="scale_factor"):
        ZeroDCEPP(0)


@pytest.mark.parametrize("wrapper", ["plain", "state_dict", "model", "module_prefix"])
def test_loader_reads_the_release_layout(tmp_path, wrapper):
    state = release_state_dict(seed=3)
    if wrapper == "module_prefix":
        obj = {f"module.{k}": v for k, v in state.items()}
    elif wrapper == "plain":
        obj = state
    else:
        obj = {wrapper: state, "epoch": torch.tensor(99)}
    path = tmp_path / "Epoch99.pth"
    torch.save(obj, path)
    model = load_zero_dce_weights(ZeroDCEPP(12), str(path))
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_loader_errors_name_the_file_and_keys(tmp_path):
    state = release_state_dict()
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_zero_dce_weights(ZeroDCEPP(), str(tmp_path / "nowhere.pth"))
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        load_zero_dce_weights(ZeroDCEPP(), str(bad))
    partial = dict(state)
    del partial["e_conv7.point_conv.bias"]
    partial["e_conv8.depth_conv.weight"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="partial.pth") as info:
        load_zero_dce_weights(ZeroDCEPP(), str(tmp_path / "partial.pth"))
    assert "e_conv7.point_conv.bias" in str(info.value)
    assert "e_conv8.depth_conv.weight" in str(info.value)
    wrong = dict(state, **{"e_conv1.point_conv.weight": torch.zeros(16, 3, 1, 1)})
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"wrong.pth.*e_conv1.point_conv.weight"):
        load_zero_dce_weights(ZeroDCEPP(), str(tmp_path / "wrong.pth"))
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="list.pth"):
        load_zero_dce_weights(ZeroDCEPP(), str(tmp_path / "list.pth"))


# Naive references (loops over pixels, float64), written from the paper / release's definitions.


def _naive_pool_luminance(x, patch):
    b, _, h, w = x.shape
    out = torch.zeros(b, h // patch, w // patch, dtype=torch.float64)
    for n, i, j in itertools.product(range(b), range(h // patch), range(w // patch)):
        block = x[n, :, i * patch : (i + 1) * patch, j * patch : (j + 1) * patch]
        out[n, i, j] = block.double().mean()
    return out


def naive_spa(inp, enh, patch=4):
    p, q = _naive_pool_luminance(inp, patch), _naive_pool_luminance(enh, patch)
    b, h, w = p.shape
    total = 0.0
    for n, i, j in itertools.product(range(b), range(h), range(w)):
        for di, dj in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            ii, jj = i + di, j + dj
            inside = 0 <= ii < h and 0 <= jj < w
            dp = p[n, i, j] - (p[n, ii, jj] if inside else 0.0)
            dq = q[n, i, j] - (q[n, ii, jj] if inside else 0.0)
            total += float(dp - dq) ** 2
    return total / (b * h * w)


def naive_exp(enh, level=0.6, patch=16):
    means = _naive_pool_luminance(enh, patch)
    return float(((means - level) ** 2).mean())


def naive_col(enh):
    total = 0.0
    for n in range(enh.shape[0]):
        r, g, b = (float(enh[n, c].double().mean()) for c in range(3))
        total += ((r - g) ** 4 + (r - b) ** 4 + (g - b) ** 4) ** 0.5
    return total / enh.shape[0]


def naive_tv(a):
    b, c, h, w = a.shape
    dy = dx = 0.0
    for n, k, i, j in itertools.product(range(b), range(c), range(h), range(w)):
        if i + 1 < h:
            dy += float(a[n, k, i + 1, j] - a[n, k, i, j]) ** 2
        if j + 1 < w:
            dx += float(a[n, k, i, j + 1] - a[n, k, i, j]) ** 2
    return 2 * (dy / ((h - 1) * w) + dx / (h * (w - 1))) / b


@pytest.fixture
def tensors():
    g = torch.Generator().manual_seed(0)
    inp = torch.rand(2, 3, 18, 21, generator=g) * 0.3  # 4x4 pooling drops the remainder
    enh = (inp + torch.rand(2, 3, 18, 21, generator=g) * 0.5).clamp(0, 1)
    curves = torch.rand(2, 3, 18, 21, generator=g) * 2 - 1
    return inp, enh, curves


def test_losses_match_naive_loops(tensors):
    inp, enh, curves = tensors
    assert float(spatial_consistency_loss(inp, enh)) == pytest.approx(naive_spa(inp, enh), 1e-5)
    assert float(exposure_loss(enh, 0.6, 4)) == pytest.approx(naive_exp(enh, 0.6, 4), 1e-5)
    big = torch.rand(2, 3, 35, 50, generator=torch.Generator().manual_seed(1))
    assert float(exposure_loss(big)) == pytest.approx(naive_exp(big, 0.6, 16), 1e-5)
    assert float(color_constancy_loss(enh)) == pytest.approx(naive_col(enh), 1e-4)
    assert float(illumination_smoothness_loss(curves)) == pytest.approx(naive_tv(curves), 1e-5)
    losses = zero_dce_losses(inp, enh, curves)
    expected = (
        1600 * naive_tv(curves) + naive_spa(inp, enh) + 5 * naive_col(enh)
        + 10 * naive_exp(enh, 0.6, 16)
    )  # fmt: skip
    assert float(sum(losses.values())) == pytest.approx(expected, 1e-5)
    assert set(losses) == {"loss_spa", "loss_exp", "loss_col", "loss_tv"}


def test_losses_see_what_they_should(tensors):
    inp, enh, curves = tensors
    assert float(spatial_consistency_loss(inp, inp)) == 0
    assert float(exposure_loss(torch.full((1, 3, 32, 32), 0.6))) == pytest.approx(0, abs=1e-12)
    assert float(illumination_smoothness_loss(torch.full_like(curves, 0.3))) == 0
    grey = torch.full((1, 3, 8, 8), 0.4, requires_grad=True)
    loss = color_constancy_loss(grey)
    loss.backward()
    assert float(loss.detach()) < 1e-10 and torch.isfinite(grey.grad).all()  # no NaN at 0
    tinted = grey.detach().clone()
    tinted[:, 0] += 0.1
    assert float(color_constancy_loss(tinted)) > 1e-3
