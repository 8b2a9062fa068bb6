"""FlashAmbient's GAN step with SOLVER.AMP.ENABLED on the CPU: bf16 forwards, one (pass-through,
bf16) gradient scaler per network, checkpointed scaler state, and an evaluation."""

import math

import numpy as np
import pytest
import torch
from detectron2.utils.events import EventStorage

from d2common.amp import inference_model
from d2common.engine import build_trainer, trainer_class
from d2common.testing import plugin_cfg

from ._tiny import TINY_OPTS


def _params(module):
    return [p.detach().clone() for p in module.parameters() if p.requires_grad]


@pytest.mark.parametrize(
    "config,has_d",
    [("demo", True), ("deepflash_vgg16_1000ep_faid", False)],
)
def test_bf16_gan_step_updates_both_networks(config, has_d, tmp_path):
    # 32 px crops: at 16 px the discriminator's last BatchNorm levels are 1x1, and batch
    # statistics of two values made its bf16 gradients overflow on some draws.
    size_opts = ["INPUT.FLASH_AMBIENT.CROP_SIZE", 32, "INPUT.FLASH_AMBIENT.RESIZE", (48, 36)]
    size_opts += ["INPUT.FLASH_AMBIENT.CROP_BASE", 36]
    opts = TINY_OPTS + size_opts + ["SOLVER.AMP.ENABLED", True, "OUTPUT_DIR", str(tmp_path)]
    cfg = plugin_cfg(f"configs/FlashAmbient/{config}.yaml", opts)
    # The crops and the sampler draw from NumPy's global state, which earlier tests move.
    np.random.seed(0)
    torch.manual_seed(0)
    trainer = build_trainer(cfg)
    step = trainer._trainer
    assert step.amp and not step.grad_scaler.is_enabled()  # bf16 needs no loss scaling
    nets = [trainer.model] + ([step.discriminator] if has_d else [])
    dtypes = set()
    convs = [m for net in nets for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    handles = [m.register_forward_hook(lambda _, __, out: dtypes.add(out.dtype)) for m in convs]
    before = [_params(net) for net in nets]
    with EventStorage(0) as storage:
        trainer.iter = 0
        trainer.run_step()
    for h in handles:
        h.remove()
    assert dtypes == {torch.bfloat16}
    scalars = {k: v[0] for k, v in storage.latest().items()}
    # detectron2 logs the single loss of a D-less run as total_loss only.
    expected = {"total_loss"} | ({"loss_l1", "loss_d_real", "loss_g_adv"} if has_d else set())
    assert expected <= set(scalars)
    assert all(math.isfinite(scalars[k]) for k in expected)
    for net, old in zip(nets, before):
        new = _params(net)
        assert all(torch.isfinite(p).all() for p in new)
        assert any(not torch.equal(a, b) for a, b in zip(old, new)), type(net).__name__

    state = trainer.state_dict()["_trainer"]
    assert {"grad_scaler", "grad_scaler_d"} <= set(state)
    # An fp32 run's checkpoint (no scaler state) resumes into an AMP run.
    del state["grad_scaler"], state["grad_scaler_d"]
    step.load_state_dict(state)


def test_bf16_evaluation(tmp_path):
    opts = TINY_OPTS + ["SOLVER.AMP.ENABLED", True, "OUTPUT_DIR", str(tmp_path)]
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", opts)
    trainer_cls = trainer_class(cfg)
    model = trainer_cls.build_model(cfg)
    results = trainer_cls.test(cfg, model)
    assert all(math.isfinite(v) for v in results["flash_ambient"].values())
    model.eval()
    flash = torch.randint(0, 255, (3, 24, 32), dtype=torch.uint8)
    with torch.no_grad():
        (out,) = inference_model(cfg, model)([{"image": flash}])
        (ref,) = model([{"image": flash}])
    assert out["ambient"].dtype == torch.float32
    torch.testing.assert_close(out["ambient"], ref["ambient"], rtol=0, atol=5e-2)


def test_bf16_step_with_non_finite_discriminator_gradients_skips_only_that_step(tmp_path):
    size_opts = ["INPUT.FLASH_AMBIENT.CROP_SIZE", 32, "INPUT.FLASH_AMBIENT.RESIZE", (48, 36)]
    size_opts += ["INPUT.FLASH_AMBIENT.CROP_BASE", 36]
    opts = TINY_OPTS + size_opts + ["SOLVER.AMP.ENABLED", True, "OUTPUT_DIR", str(tmp_path)]
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", opts)
    np.random.seed(0)
    torch.manual_seed(0)
    trainer = build_trainer(cfg)
    step = trainer._trainer
    first = next(p for p in step.discriminator.parameters() if p.requires_grad)
    # An overflow inside D's low-precision backward, as tiny BatchNorm statistics once caused.
    hook = first.register_hook(lambda g: torch.full_like(g, float("inf")))
    d_before, g_before = _params(step.discriminator), _params(trainer.model)
    with EventStorage(0):
        trainer.iter = 0
        trainer.run_step()
    hook.remove()
    d_after, g_after = _params(step.discriminator), _params(trainer.model)
    assert all(torch.equal(a, b) for a, b in zip(d_before, d_after))  # D's step skipped
    assert step.grad_scaler_d.skipped_steps == 1 and step.grad_scaler.skipped_steps == 0
    assert any(not torch.equal(a, b) for a, b in zip(g_before, g_after))  # G still learns
    assert all(torch.isfinite(p).all() for p in g_after)
