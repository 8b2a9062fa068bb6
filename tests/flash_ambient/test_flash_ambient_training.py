"""Configs load; the GAN trainer steps, logs, checkpoints and resumes all four states."""

import glob
import json
import os

import pytest
import torch
from detectron2.utils.events import EventStorage

from d2common.engine import build_trainer
from d2common.testing import plugin_cfg, repo_root, run_train_steps

from ._tiny import TINY_OPTS

CONFIGS = sorted(
    os.path.relpath(p, repo_root())
    for p in glob.glob(str(repo_root() / "configs" / "FlashAmbient" / "*.yaml"))
)


@pytest.mark.parametrize("config", CONFIGS)
def test_every_config_loads(config):
    cfg = plugin_cfg(config)
    assert cfg.MODEL.META_ARCHITECTURE.startswith("FlashAmbient")
    assert cfg.TRAINER.NAME == "FlashAmbientGANTrainer"


def test_unknown_key_fails_at_start():
    with pytest.raises((KeyError, AssertionError), match="NO_SUCH_KEY"):
        plugin_cfg("configs/FlashAmbient/demo.yaml", ["MODEL.FLASH_AMBIENT.NO_SUCH_KEY", 1])


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize(
    "config,has_d,frozen,opts",
    [
        ("flash_ambient_vgg16_1000ep_faid", True, True, []),
        # The 70x70 PatchGAN needs inputs of at least 32 pixels.
        (
            "flash_ambient_patchgan_vgg16_1000ep_faid",
            True,
            True,
            ["INPUT.FLASH_AMBIENT.CROP_SIZE", 32],
        ),
        ("r_vgg16_1000ep_faid", False, True, []),
        ("flash_ambient_sidunet_1000ep_faid", True, False, []),
        ("deepflash_vgg16_1000ep_faid", False, True, []),
    ],
)
def test_one_training_step_updates_the_right_parameters(config, has_d, frozen, opts, tmp_path):
    opts = TINY_OPTS + opts + ["OUTPUT_DIR", str(tmp_path)]
    cfg = plugin_cfg(f"configs/FlashAmbient/{config}.yaml", opts)
    torch.manual_seed(0)
    trainer = build_trainer(cfg)
    generator = trainer.model.generator
    step = trainer._trainer
    assert (step.discriminator is not None) == has_d
    before_g = _params(generator)
    before_d = _params(step.discriminator) if has_d else []
    with EventStorage(0) as storage:
        trainer.iter = 0
        trainer.run_step()
    scalars = storage.latest()
    assert "total_loss" in scalars
    expected = {"loss_d_real", "loss_d_fake", "loss_g_adv", "d_total_loss"}
    assert expected <= set(scalars) if has_d else not expected & set(scalars)
    changed = [not torch.equal(a, b) for a, b in zip(before_g, generator.parameters())]
    # A 4-channel net can have dead ReLUs (zero gradients), so "some" rather than "all".
    n_enc = len(list(generator.encoder.parameters()))
    assert any(changed[:n_enc]) != frozen
    assert any(changed[n_enc:]) and changed[-1]  # the decoder and the output head learn
    if has_d:
        d_changed = [
            not torch.equal(a, b) for a, b in zip(before_d, step.discriminator.parameters())
        ]
        assert any(d_changed) and d_changed[-1]
    trainer.model.eval()
    batch = [{"image": torch.randint(0, 256, (3, 24, 32), dtype=torch.uint8)}]
    with torch.no_grad():
        assert trainer.model(batch)[0]["ambient"].shape == (3, 24, 32)


def test_run_train_steps_with_demo_config(tmp_path):
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", TINY_OPTS + ["OUTPUT_DIR", str(tmp_path)])
    _, storage = run_train_steps(cfg, 1)
    assert storage.history("loss_l1").latest() > 0


def test_checkpoint_holds_both_nets_and_optimisers_and_resume_restores_them(tmp_path):
    opts = TINY_OPTS + ["OUTPUT_DIR", str(tmp_path), "SOLVER.CHECKPOINT_PERIOD", 100]
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", opts + ["SOLVER.MAX_ITER", 2])
    first = build_trainer(cfg)
    first.resume_or_load(resume=False)
    first.train()
    assert set(first._last_eval_results["flash_ambient"]) == {
        "PSNR",
        "SSIM_rgb_gaussian",
        "SSIM_gray_uniform7",
    }
    ckpt = torch.load(tmp_path / "model_final.pth", map_location="cpu")
    assert {"model", "trainer", "discriminator", "optimizer_d", "scheduler_d"} <= set(ckpt)
    assert ckpt["trainer"]["_trainer"]["optimizer"]["state"]  # the generator's Adam moments
    with open(tmp_path / "metrics.json") as f:
        logged = [json.loads(line) for line in f]
    logged_keys = set().union(*logged)
    assert {"loss_l1", "loss_g_adv", "loss_d_real", "loss_d_fake", "lr_d"} <= logged_keys

    resume_opts = opts + ["SOLVER.MAX_ITER", 3, "DATASETS.TEST", ()]  # evaluated above already
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", resume_opts)
    second = build_trainer(cfg)
    second.resume_or_load(resume=True)
    assert second.start_iter == 2
    d1, d2 = first._trainer.discriminator, second._trainer.discriminator
    for a, b in zip(d1.state_dict().values(), d2.state_dict().values()):
        assert torch.equal(a, b)
    for opt in ("optimizer", "optimizer_d"):
        s1 = getattr(first._trainer, opt).state_dict()["state"]
        s2 = getattr(second._trainer, opt).state_dict()["state"]
        assert s1.keys() == s2.keys() and all(
            torch.equal(s1[k]["exp_avg"], s2[k]["exp_avg"]) for k in s1
        )
    assert second._trainer.scheduler_d.last_epoch == first._trainer.scheduler_d.last_epoch
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    second.train()
    assert second.iter == 3  # one more iteration after resuming at 2
