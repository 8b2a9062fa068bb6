"""GAN step hygiene: D frozen in the G step, non-finite losses stop training, gradient clipping."""

import copy

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.solver import build_lr_scheduler
from detectron2.utils.events import EventStorage

from d2common.engine import build_trainer
from d2common.testing import plugin_cfg
from flash_ambient.engine.trainer import FlashAmbientGANStep, FlashAmbientGANTrainer
from flash_ambient.modeling import FlashAmbientGANLoss, build_flash_ambient_discriminator

from ._tiny import TINY_OPTS


def _batch(seed=0, size=(32, 40)):
    g = torch.Generator().manual_seed(seed)
    flash = torch.randint(60, 256, (2, 3) + size, generator=g, dtype=torch.uint8)
    ambient = (flash // 2 + torch.randint(0, 60, flash.shape, generator=g)).to(torch.uint8)
    return [{"image": f, "ambient": a} for f, a in zip(flash, ambient)]


def _step(opts=()):
    torch.manual_seed(0)
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", TINY_OPTS + list(opts))
    model = build_model(cfg)
    disc = build_flash_ambient_discriminator(cfg)
    model.train()
    optimizer = FlashAmbientGANTrainer.build_optimizer(cfg, model)
    optimizer_d = FlashAmbientGANTrainer.build_optimizer_d(cfg, disc)
    step = FlashAmbientGANStep(
        model,
        [_batch()] * 2,
        optimizer,
        loss=FlashAmbientGANLoss(cfg),
        discriminator=disc,
        optimizer_d=optimizer_d,
        scheduler_d=build_lr_scheduler(cfg, optimizer_d),
    )
    step.iter = 0
    return cfg, step


def _record_step(optimizer, record):
    """Wraps ``optimizer.step`` to keep the gradients it was called with."""
    original = optimizer.step

    def step(*args, **kwargs):
        record.append([p.grad.clone() for g in optimizer.param_groups for p in g["params"]])
        return original(*args, **kwargs)

    optimizer.step = step


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_discriminator_is_frozen_in_the_generator_step_and_g_gradients_are_unchanged():
    cfg, step = _step()
    disc, model = step.discriminator, step.model
    g_before = copy.deepcopy(model)
    d_grads, g_grads, d_after_d_step, requires = [], [], [], []
    _record_step(step.optimizer_d, d_grads)
    _record_step(step.optimizer, g_grads)
    original_d_step = step.optimizer_d.step
    step.optimizer_d.step = lambda *a, **k: (
        original_d_step(*a, **k),
        d_after_d_step.append(copy.deepcopy(disc)),
    )[0]
    disc.register_forward_hook(
        lambda m, i, o: requires.append({p.requires_grad for p in m.parameters()})
    )
    with EventStorage(0):
        step.run_step()

    assert requires == [{True}, {True}, {False}], "D trains in the D step, frozen in the G step"
    assert all(p.requires_grad for p in disc.parameters()), "D is trainable again afterwards"
    # The G step left D's gradients exactly as the D step's backward wrote them.
    for grad, p in zip(d_grads[0], disc.parameters()):
        assert torch.equal(p.grad, grad)

    # G's gradients equal those of the objective computed with an unfrozen copy of D.
    outputs = g_before(_batch())
    losses = FlashAmbientGANLoss(cfg).generator_losses(outputs, d_after_d_step[0])
    params = [p for p in g_before.parameters() if p.requires_grad]
    reference = torch.autograd.grad(sum(losses.values()), params)
    assert len(reference) == len(g_grads[0])
    for got, want in zip(g_grads[0], reference):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "network,key,value",
    [("discriminator", "loss_d_fake", "nan"), ("generator", "loss_g_adv", "inf")],
)
def test_non_finite_loss_raises_naming_the_loss_and_iteration(network, key, value):
    _, step = _step()
    step.iter = 7
    method = f"{network}_losses"
    compute = getattr(step.loss, method)

    def poisoned(*args):
        losses = compute(*args)
        losses[key] = losses[key] * float(value)
        return losses

    setattr(step.loss, method, poisoned)
    d_before = copy.deepcopy(step.discriminator.state_dict())
    with EventStorage(7), pytest.raises(FloatingPointError) as info:
        step.run_step()
    message = str(info.value)
    assert f"{network} loss became infinite or NaN at iteration=7" in message and key in message
    if network == "discriminator":  # raised before D's optimiser could step on it
        for k, v in step.discriminator.state_dict().items():
            if v.is_floating_point() and "running" not in k:
                assert torch.equal(v, d_before[k]), k


def _max_grads(trainer):
    step = trainer._trainer
    with EventStorage(0):
        trainer.iter = 0
        trainer.run_step()
    g = max(p.grad.abs().max().item() for p in trainer.model.parameters() if p.grad is not None)
    d = max(p.grad.abs().max().item() for p in step.discriminator.parameters())
    return g, d, step


def test_clip_gradients_is_honoured_by_both_optimisers(tmp_path):
    opts = TINY_OPTS + ["OUTPUT_DIR", str(tmp_path)]
    torch.manual_seed(0)
    g_free, d_free, _ = _max_grads(
        build_trainer(plugin_cfg("configs/FlashAmbient/demo.yaml", opts))
    )
    limit = 0.1 * min(g_free, d_free)
    clip = ["SOLVER.CLIP_GRADIENTS.ENABLED", True, "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "value"]
    clip += ["SOLVER.CLIP_GRADIENTS.CLIP_VALUE", limit]
    torch.manual_seed(0)
    trainer = build_trainer(plugin_cfg("configs/FlashAmbient/demo.yaml", opts + clip))
    g_max, d_max, step = _max_grads(trainer)
    assert g_max <= limit * (1 + 1e-6) and d_max <= limit * (1 + 1e-6)
    assert "WithGradientClip" in type(step.optimizer).__name__
    assert "WithGradientClip" in type(step.optimizer_d).__name__


def test_unsupported_clip_type_is_rejected_at_start_up(tmp_path):
    opts = TINY_OPTS + ["OUTPUT_DIR", str(tmp_path), "SOLVER.CLIP_GRADIENTS.ENABLED", True]
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", opts)
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "full_model"
    with pytest.raises(ValueError, match="CLIP_TYPE 'full_model' is not supported"):
        build_trainer(cfg)
