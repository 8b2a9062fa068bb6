"""The meta-architecture: shapes, fusion modes, loss (Eq. 3), one training and inference step."""

import glob
import os

import pytest
import torch
import torch.nn.functional as F
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from d2common.testing import plugin_cfg, repo_root, run_train_steps
from overhead_fusion.modeling import UNet, unet_channels, weighted_cross_entropy


def test_unet_widths_are_the_authors_quarter_unet():
    assert unet_channels(16, 4) == ([16, 32, 64, 128, 128], [64, 32, 16, 16])
    net = UNet(3, 1, 16, 4)
    convs = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[::2][:9] == [16, 32, 64, 128, 128, 64, 32, 16, 16]
    assert convs[-1] == 1


@pytest.mark.parametrize("size", [(37, 45), (16, 16)])
def test_unet_any_size(size):
    net = UNet(3, 3, 4, 3).eval()
    assert net(torch.rand(2, 3, *size)).shape == (2, 3, *size)


def test_weighted_cross_entropy_is_equation_3():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 4, 5))
    target[0, 0, :2] = 255
    alpha = torch.tensor([0.5, 1.0, 2.0])
    logp = F.log_softmax(logits, dim=1)
    total, count = 0.0, 0
    for n in range(2):
        for y in range(4):
            for x in range(5):
                t = int(target[n, y, x])
                if t == 255:
                    continue
                total += -float(alpha[t] * logp[n, t, y, x])
                count += 1
    loss = weighted_cross_entropy(logits, target, alpha, 255)
    assert float(loss) == pytest.approx(total / count, rel=1e-5)
    logits.requires_grad_(True)
    empty = weighted_cross_entropy(logits, torch.full_like(target, 255), alpha, 255)
    assert float(empty) == 0 and empty.grad_fn is not None


def _batch(counts, size=24):
    return [
        {
            "views": torch.rand(v, 3, size, size),
            "image": torch.rand(3, size, size),
            "sem_seg": torch.randint(0, 3, (size, size)),
        }
        for v in counts
    ]


@pytest.mark.parametrize("fusion", ["quality", "mean", "clean"])
def test_inference_outputs_with_varying_views(tiny_cfg, fusion):
    cfg = tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.FUSION", fusion])
    model = build_model(cfg).eval()
    batch = _batch([2, 5, 1])
    with torch.no_grad():
        outputs = model(batch)
    for inp, out in zip(batch, outputs):
        v = inp["views"].shape[0]
        assert out["sem_seg"].shape == (3, 24, 24)
        assert out["quality"].shape == (v, 24, 24)
        torch.testing.assert_close(out["quality"].sum(0), torch.ones(24, 24))
        torch.testing.assert_close(out["sem_seg"].sum(0), torch.ones(24, 24))
        if fusion == "mean":
            torch.testing.assert_close(out["fused"], inp["views"].mean(0))
        if fusion == "clean":
            torch.testing.assert_close(out["fused"], inp["image"])


def test_zero_init_quality_net_starts_at_mean_fusion(tiny_cfg):
    model = build_model(tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.QUALITY_ZERO_INIT", "True"])).eval()
    batch = _batch([3, 1, 4])
    with torch.no_grad():
        outputs = model(batch)
    for inp, out in zip(batch, outputs):
        v = inp["views"].shape[0]
        torch.testing.assert_close(out["quality"], torch.full((v, 24, 24), 1.0 / v))
        torch.testing.assert_close(out["fused"], inp["views"].mean(0))
    random_init = build_model(
        tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.QUALITY_ZERO_INIT", "False"])
    ).eval()
    with torch.no_grad():
        quality = random_init(batch)[0]["quality"]
    assert not torch.allclose(quality, torch.full_like(quality, 1.0 / 3))


def test_quality_fusion_is_invariant_to_view_order(tiny_cfg):
    # Random init (explicit): with zero init every view weighs 1 / K and the test would be vacuous.
    cfg = tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.QUALITY_ZERO_INIT", "False"])
    model = build_model(cfg).eval()
    batch = _batch([4, 3])
    shuffled = [dict(b, views=b["views"].flip(0)) for b in batch]
    with torch.no_grad():
        a, b = model(batch), model(shuffled)
    for x, y in zip(a, b):
        torch.testing.assert_close(x["fused"], y["fused"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(x["quality"], y["quality"].flip(0), atol=1e-5, rtol=1e-5)


def test_different_image_sizes_in_one_batch(tiny_cfg):
    model = build_model(tiny_cfg()).eval()
    batch = _batch([2], 20) + _batch([3], 28)
    with torch.no_grad():
        out = model(batch)
    assert out[0]["fused"].shape == (3, 20, 20) and out[1]["quality"].shape == (3, 28, 28)


def test_a_sample_output_does_not_depend_on_its_batch(tiny_cfg):
    # Zero-padding a 20 px sample to 28 px would reach into its convolutions near the border.
    model = build_model(tiny_cfg()).eval()
    small, big, same_size = _batch([2], 20), _batch([3], 28), _batch([4], 20)
    with torch.no_grad():
        alone = model(small)[0]
        mixed = model(big + small + same_size)[1]
    for key in ("sem_seg", "fused", "quality"):
        assert mixed[key].shape == alone[key].shape
        torch.testing.assert_close(mixed[key], alone[key], atol=1e-5, rtol=1e-5)


def test_mixed_size_training_loss_is_eq3_over_the_batch(tiny_cfg):
    model = build_model(tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.FUSION", "mean"])).train()
    batch = _batch([2], 20) + _batch([3], 28)
    model.seg_net.eval()  # batch statistics aside, the loss is one Eq. 3 over all pixels
    with EventStorage():
        loss = model(batch)["loss_sem_seg"]
    model.eval()
    with torch.no_grad():
        logits = [torch.log(o["sem_seg"]) for o in model(batch)]
    total = sum(
        torch.nn.functional.nll_loss(
            lg[None], x["sem_seg"][None], weight=model.class_weights, reduction="sum"
        )
        for lg, x in zip(logits, batch)
    )
    torch.testing.assert_close(loss, total / (20 * 20 + 28 * 28), atol=1e-5, rtol=1e-4)


def test_bad_views_raise_a_clear_error(tiny_cfg):
    model = build_model(tiny_cfg()).eval()
    with pytest.raises(ValueError, match="views"):
        model([{"views": torch.rand(3, 16, 16)}])


@pytest.mark.parametrize("fusion", ["quality", "mean", "clean"])
def test_one_training_step_on_toy_data(tiny_cfg, fusion):
    cfg = tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.FUSION", fusion])
    trainer, storage = run_train_steps(cfg, 1)
    losses = storage.latest()
    assert torch.isfinite(torch.tensor(losses["total_loss"][0]))
    assert "overhead_fusion/train_fused_l1" in losses
    grads = [p.grad for p in trainer.model.seg_net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    q_grads = [p.grad for p in trainer.model.quality_net.parameters()]
    if fusion == "quality":
        assert any(g is not None and g.abs().sum() > 0 for g in q_grads)
    assert isinstance(trainer.optimizer, torch.optim.Adam)


def test_every_config_loads_and_builds():
    configs = sorted(glob.glob(str(repo_root() / "configs/OverheadFusion/*.yaml")))
    assert len(configs) >= 8
    for path in configs:
        cfg = plugin_cfg(os.path.relpath(path, repo_root()), ["MODEL.DEVICE", "cpu"])
        c = cfg.MODEL.OVERHEAD_FUSION
        assert len(c.CLASS_WEIGHTS) == c.NUM_CLASSES, path
        assert cfg.MODEL.META_ARCHITECTURE == "OverheadFusionNet"
        build_model(cfg)


def test_unknown_config_key_fails():
    with pytest.raises((KeyError, AssertionError), match="FUSON"):
        plugin_cfg("configs/OverheadFusion/demo.yaml", ["MODEL.OVERHEAD_FUSION.FUSON", "mean"])


def test_mismatched_class_weights_fail(tiny_cfg):
    cfg = tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.CLASS_WEIGHTS", "[1.0, 2.0]"])
    with pytest.raises(ValueError, match="CLASS_WEIGHTS"):
        build_model(cfg)
