"""Golden losses of the attention-guided cGAN (the demo's generator and discriminator).

One ``FlashAmbientGANStep`` (D step, then G step) on a fixed two-pair batch with hash-defined
weights. Every loss is checked against Eqs. 1-4 computed here from the networks' own outputs
(attention map, masked L1, BCE of D's logits with target 1 for real and 0 for fake, the config's
weights), against the discriminator state each term must use, and against values stored here.
"""

import copy
import math

import torch
import torch.nn.functional as F
from detectron2.modeling import build_model
from detectron2.solver import build_lr_scheduler

from d2common.testing import plugin_cfg
from flash_ambient.engine.trainer import FlashAmbientGANStep, FlashAmbientGANTrainer
from flash_ambient.modeling import FlashAmbientGANLoss, build_flash_ambient_discriminator

from .._golden import assert_rel, formula_init_, hash_tensor, one_training_step

# Weights other than 1 so that a dropped or misplaced weight changes a value.
OPTS = [
    "MODEL.DEVICE", "cpu",
    "MODEL.FLASH_AMBIENT.L1_WEIGHT", 1.5,
    "MODEL.FLASH_AMBIENT.ADV_WEIGHT", 0.25,
    "MODEL.FLASH_AMBIENT.D_LOSS_WEIGHT", 0.5,
]  # fmt: skip

# Written from a run of this test on torch 2.3.1 (CPU); they hold on torch 2.14 too. An
# intended change of the model moves them: with the formula checks still passing, copy the
# values that the failure message prints.
GOLDEN = {
    "loss_l1": 0.29363000,
    "loss_g_adv": 0.13356192,
    "loss_d_real": 0.32888991,
    "loss_d_fake": 0.59891921,
}

SIZE = (64, 96)


def _pair(seed):
    """A flash image and a darker, partly different ambient image, both (3, H, W) uint8."""
    flash = hash_tensor((3,) + SIZE, seed, 60.0, 250.0)
    ambient = 0.5 * flash + hash_tensor((3,) + SIZE, seed + 1, 0.0, 60.0)
    ambient[:, 10:30, 20:50] = hash_tensor((3, 20, 30), seed + 2, 0.0, 255.0)  # a moved object
    return flash.to(torch.uint8), ambient.to(torch.uint8)


def _step():
    torch.manual_seed(0)
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", OPTS)
    model = formula_init_(build_model(cfg))
    disc = formula_init_(build_flash_ambient_discriminator(cfg), seed=1)
    model.train()
    optimizer = FlashAmbientGANTrainer.build_optimizer(cfg, model)
    optimizer_d = FlashAmbientGANTrainer.build_optimizer_d(cfg, disc)
    batch = [dict(zip(("image", "ambient"), _pair(10 * k))) for k in range(2)]
    step = FlashAmbientGANStep(
        model,
        [batch],
        optimizer,
        loss=FlashAmbientGANLoss(cfg),
        discriminator=disc,
        optimizer_d=optimizer_d,
        scheduler_d=build_lr_scheduler(cfg, optimizer_d),
    )
    calls, fakes = [], []
    disc.register_forward_hook(lambda m, i, o: calls.append((i[0].detach(), o.detach())))
    model.generator.register_forward_hook(lambda m, i, o: fakes.append(o.detach()))
    disc_before = copy.deepcopy(disc)
    losses = one_training_step(step)
    return cfg, batch, losses, calls, fakes, disc_before, disc


def test_flash_ambient_one_step_losses_match_equations_and_golden_values():
    cfg, batch, losses, calls, fakes, disc_before, disc_after = _step()
    total = losses.pop("total_loss")  # the generator's objective only
    assert math.isclose(total, losses["loss_l1"] + losses["loss_g_adv"], rel_tol=1e-5)
    m = cfg.MODEL.FLASH_AMBIENT
    assert set(losses) == {"loss_l1", "loss_g_adv", "loss_d_real", "loss_d_fake"}
    d = torch.float64
    flash = torch.stack([x["image"] for x in batch]).to(d) / 255
    ambient = torch.stack([x["ambient"] for x in batch]).to(d) / 255
    attention = 1 - (ambient - flash).abs().mean(dim=1, keepdim=True)  # Eq. 1
    assert len(fakes) == 1 and len(calls) == 3, "one G forward; D on real, fake (D step), fake (G)"
    fake = fakes[0].to(d)
    # What D saw: the real and the generated image, both times the attention map (Eq. 2).
    (real_in, real_out), (fake_in, fake_out), (g_in, g_out) = calls
    for seen, image in ((real_in, ambient), (fake_in, fake), (g_in, fake)):
        torch.testing.assert_close(seen.to(d), image * attention, rtol=1e-5, atol=1e-6)
    # The D terms use D before its update; the G term uses the updated D (pix2pix order).
    with torch.no_grad():
        torch.testing.assert_close(disc_before(real_in), real_out, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(disc_after(g_in), g_out, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(fake_out, g_out), "the G term must see the updated discriminator"

    def bce(logits, target):  # -[t log s(x) + (1 - t) log(1 - s(x))], mean over the patch
        x = logits.to(d)
        return (target * F.softplus(-x) + (1 - target) * F.softplus(x)).mean()

    reference = {
        "loss_l1": m.L1_WEIGHT * (ambient * attention - fake * attention).abs().mean(),
        "loss_g_adv": m.ADV_WEIGHT * bce(g_out, 1.0),
        "loss_d_real": m.D_LOSS_WEIGHT * bce(real_out, 1.0),
        "loss_d_fake": m.D_LOSS_WEIGHT * bce(fake_out, 0.0),
    }
    assert_rel(losses, {k: float(v) for k, v in reference.items()}, 2e-5, "Eqs. 1-4")
    assert_rel(losses, GOLDEN, 1e-4, "stored values")


def test_discriminator_losses_on_fixed_outputs():
    """Real target 1, fake target 0, D_LOSS_WEIGHT on both, conditional input cat(I_f, .)."""
    flash = hash_tensor((2, 3, 8, 8), 1)
    ambient, fake = hash_tensor((2, 3, 8, 8), 2), hash_tensor((2, 3, 8, 8), 3)
    attention = 1 - (ambient - flash).abs().mean(dim=1, keepdim=True)
    outputs = {"flash": flash, "target": ambient, "fake": fake, "attention": attention}
    weights = hash_tensor((6,), 4, -2.0, 2.0)

    def disc(x):  # a fixed linear patch scorer: logit = sum_c w_c x_c - 1
        return (x * weights[: x.shape[1], None, None]).sum(1, keepdim=True) - 1.0

    for conditional in (False, True):
        loss = FlashAmbientGANLoss(
            l1_weight=1.0, adv_weight=1.0, d_loss_weight=0.5, conditional=conditional
        )
        got = {k: float(v) for k, v in loss.discriminator_losses(outputs, disc).items()}

        seen = [image * attention for image in (ambient, fake)]
        if conditional:
            seen = [torch.cat([flash, image], 1) for image in seen]
        real, fake_logits = disc(seen[0]), disc(seen[1])
        expected = {
            "loss_d_real": 0.5 * float(torch.log1p(torch.exp(-real)).mean()),
            "loss_d_fake": 0.5 * float(torch.log1p(torch.exp(fake_logits)).mean()),
        }
        assert_rel(got, expected, 1e-5, f"D losses (conditional={conditional})")
