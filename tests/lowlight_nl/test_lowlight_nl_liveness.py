"""The weighted NL blocks learn under any normalisation: gradients at step 0, 20 training
iterations of the demo (GroupNorm everywhere) and of a shrunk paper config (FrozenBN R50, blocks
after res3-res5, heads frozen), the liveness scalars and the warning about dead blocks."""

import logging

import pytest
import torch
from torch import nn

from d2common.testing import plugin_cfg
from lowlight_nl.ops import WeightedNonLocal2d

# Smallest changes of w and of the largest gamma entry that count as "learnt" after 20
# iterations. With w = gamma = 0 under the demo's GroupNorm consumers, w moves by ~1e-7 and
# gamma by ~1e-11 there; with the default init the demo's blocks move w by 3e-4 to 8e-3 and gamma
# by 1e-6 to 8e-6 (gamma's gradient is w times a projection of dL/dz: second order at first).
W_MOVED = 1e-4
GAMMA_MOVED = 1e-7
# Smallest relative change of every FPN level when the blocks are switched off (4e-3 to 5e-3
# for the demo after 20 iterations).
FEATURES_CHANGED = 5e-4

TINY = [
    "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "128",
    "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128",
    "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "64", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
    "SEED", "0",
]  # fmt: skip

# The paper's model (FrozenBN R50-FPN, BN in the blocks, embedded Gaussian after res3-res5, only
# the backbone trained) with 4x narrower stages, on the toy data, without warm-up, at lr 5e-3:
# at the paper's 5e-4, 20 iterations move w by 6e-3 to 2e-2 but gamma's updates (w times a
# projection of dL/dz, times lr) stay below float32's resolution at 1.0.
PAPER_SHRUNK = TINY + [
    "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu",
    "MODEL.RESNETS.WIDTH_PER_GROUP", "16", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
    "MODEL.FPN.OUT_CHANNELS", "64", "MODEL.ROI_HEADS.NUM_CLASSES", "3",
    "MODEL.ROI_BOX_HEAD.FC_DIM", "128", "MODEL.ROI_MASK_HEAD.CONV_DIM", "64",
    "MODEL.ANCHOR_GENERATOR.SIZES", "[[16], [32], [64], [128], [256]]",
    "DATASETS.TRAIN", "('lowlight_nl_toy_train',)", "DATASETS.TEST", "('lowlight_nl_toy_val',)",
    "SOLVER.WARMUP_ITERS", "0", "SOLVER.BASE_LR", "0.005",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
]  # fmt: skip
PAPER_CONFIG = "configs/LowLightNL/wnl-eg_R50_FPN_10ep_coco_lowlight.yaml"


def _normalised_consumer_dw(gamma_init: float) -> tuple:
    """(dL/dw, <dL/dz, W_z(y) - x>, |dL/dz| |x|) of a block whose only consumer is
    GroupNorm(conv(z)) (eps = 0: exactly scale-invariant in z), in float64."""
    torch.manual_seed(0)
    block = WeightedNonLocal2d(16, norm=lambda c: nn.GroupNorm(4, c), gamma_init=gamma_init)
    conv = nn.Conv2d(16, 8, 3, padding=1, bias=False)
    consumer = nn.Sequential(conv, nn.GroupNorm(2, 8, eps=0.0))
    block, consumer = block.double(), consumer.double()
    x = torch.randn(2, 16, 6, 7, dtype=torch.float64) * 3
    z = block(x)
    z.retain_grad()
    (consumer(z) * torch.randn(2, 8, 6, 7, dtype=torch.float64)).sum().backward()
    with torch.no_grad():
        path = block.out_norm(block.out_conv(block.nonlocal_response(x)))
    closed_form = float((z.grad * (path - x)).sum())
    return float(block.blend_weight.grad), closed_form, float(z.grad.norm() * x.norm())


def test_w_gets_a_gradient_behind_a_normalised_consumer():
    """With w = 0 the block is the identity for both inits and dL/dw = <dL/dz, W_z(y) - x>.
    The consumer is scale-invariant, so <dL/dz, x> = 0: with gamma = 0 (W_z(y) = 0), dL/dw = 0;
    with gamma = 1 it is the projection of dL/dz on the normalised non-local path."""
    dead, dead_closed, scale = _normalised_consumer_dw(0.0)
    live, live_closed, _ = _normalised_consumer_dw(1.0)
    assert dead == pytest.approx(dead_closed, abs=1e-12 * scale)
    assert live == pytest.approx(live_closed, rel=1e-9)
    assert abs(dead) < 1e-12 * scale
    assert abs(live) > 1e-4 * scale


def test_gamma_init_follows_the_initial_w():
    assert float(WeightedNonLocal2d(8).out_norm.weight.min()) == 1.0
    assert float(WeightedNonLocal2d(8, weight_init=0.5).out_norm.weight.max()) == 0.0
    assert float(WeightedNonLocal2d(8, gamma_init=0.25).out_norm.weight.max()) == 0.25
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(WeightedNonLocal2d(8).train()(x), x)  # identity at step 0


def _calibrate_frozen_bn(model, batch):
    """Sets every FrozenBN's statistics to the per-channel mean and variance of its input on
    ``batch``, in forward order, so that a randomly initialised FrozenBN network has normalised
    features as a pretrained one does (its raw activations grow by orders of magnitude)."""
    from detectron2.layers import FrozenBatchNorm2d

    def set_stats(module, inputs):
        x = inputs[0]
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)) + module.eps)

    frozen = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    handles = [m.register_forward_pre_hook(set_stats) for m in frozen]
    with torch.no_grad():
        model.backbone(model.preprocess_image(batch).tensor)
    for h in handles:
        h.remove()
    return len(frozen)


def _train(cfg, steps: int):
    """``steps`` iterations with the liveness hook; returns trainer, hook, storage, start."""
    from detectron2.utils.env import seed_all_rng
    from detectron2.utils.events import EventStorage

    from d2common.engine import build_trainer
    from lowlight_nl.liveness import NonLocalLivenessHook, block_state

    seed_all_rng(0)  # the training sampler draws its seed from numpy when not given one
    trainer = build_trainer(cfg)
    if cfg.MODEL.RESNETS.NORM == "FrozenBN":
        assert _calibrate_frozen_bn(trainer.model, next(trainer._trainer._data_loader_iter)) > 0
    nl = cfg.MODEL.LOWLIGHT_NL
    hook = NonLocalLivenessHook(trainer.model, nl.LIVENESS_CHECK_ITER, nl.LIVENESS_TOL)
    hook.trainer = trainer
    start = {name: block_state(b) for name, b in hook.blocks.items()}
    with EventStorage(0) as storage:
        trainer.storage = storage
        hook.before_train()
        for step in range(steps):
            storage.iter = trainer.iter = step
            trainer.run_step()
            trainer.scheduler.step()  # what detectron2's LRScheduler hook does (warm-up)
            hook.after_step()
    return trainer, hook, storage, start


def _predictions(model, images):
    model.eval()
    with torch.no_grad():
        outputs = model([{"image": im, "height": 96, "width": 128} for im in images])
    return [o["instances"].to("cpu") for o in outputs]


def _assert_blocks_learnt_and_matter(trainer, hook, storage, start, stages):
    from lowlight_nl.modeling.backbone import nonlocal_blocks_disabled

    assert sorted(hook.blocks) == stages
    assert hook.unmoved == []
    latest = storage.latest()
    for name, block in hook.blocks.items():
        dw = abs(float(block.blend_weight) - float(start[name]["w"]))
        dgamma = float((block.out_norm.weight.detach() - start[name]["gamma"]).abs().max())
        message = f"{name}: |dw| = {dw:.2g}, max |dgamma| = {dgamma:.2g}"
        assert dw > W_MOVED and dgamma > GAMMA_MOVED, message
        for key in ("w", "gamma", "gamma_change", "wz_norm"):
            assert f"wnl/{name}/{key}" in latest
        assert latest[f"wnl/{name}/w"][0] == pytest.approx(float(block.blend_weight))
        assert latest[f"wnl/{name}/gamma_change"][0] == pytest.approx(dgamma)
    gen = torch.Generator().manual_seed(5)
    images = [torch.randint(0, 60, (3, 96, 128), generator=gen, dtype=torch.uint8) for _ in "ab"]
    model = trainer.model.eval()
    with torch.no_grad():
        tensor = model.preprocess_image([{"image": im} for im in images]).tensor
        features = model.backbone(tensor)
        with nonlocal_blocks_disabled(model):
            plain = model.backbone(tensor)
    # Blocks at (1 - w) x with |w| ~ 1e-6 behind normalised consumers change these by ~1e-7.
    change = {k: float((features[k] - plain[k]).norm() / plain[k].norm()) for k in plain}
    assert min(change.values()) > FEATURES_CHANGED, change
    with_blocks = _predictions(model, images)
    with nonlocal_blocks_disabled(model):
        without = _predictions(model, images)
    for a, b in zip(with_blocks, without):
        same = (
            len(a) == len(b)
            and torch.allclose(a.scores, b.scores, rtol=0, atol=1e-6)
            and torch.allclose(a.pred_boxes.tensor, b.pred_boxes.tensor, rtol=0, atol=1e-2)
        )
        assert not same, "switching the blocks off leaves the predictions unchanged"


def test_demo_blocks_learn_in_20_iterations(tmp_path):
    opts = TINY + ["OUTPUT_DIR", str(tmp_path), "MODEL.LOWLIGHT_NL.LIVENESS_CHECK_ITER", "20"]
    cfg = plugin_cfg("configs/LowLightNL/demo.yaml", opts)
    assert cfg.MODEL.RESNETS.NORM == "GN" and cfg.MODEL.FPN.NORM == "GN"
    _assert_blocks_learnt_and_matter(*_train(cfg, 20), ["res2", "res3", "res4", "res5"])


def test_paper_config_blocks_learn_in_20_iterations(tmp_path):
    opts = PAPER_SHRUNK + ["OUTPUT_DIR", str(tmp_path), "MODEL.LOWLIGHT_NL.LIVENESS_CHECK_ITER", 20]
    cfg = plugin_cfg(PAPER_CONFIG, opts)
    assert cfg.MODEL.RESNETS.NORM == "FrozenBN" and cfg.MODEL.LOWLIGHT_NL.TRAIN_BACKBONE_ONLY
    assert cfg.MODEL.RESNETS.DEPTH == 50 and cfg.MODEL.LOWLIGHT_NL.NORM == "BN"
    _assert_blocks_learnt_and_matter(*_train(cfg, 20), ["res3", "res4", "res5"])


def test_dead_blocks_are_reported(tmp_path):
    """gamma = 0 behind w = 0 with GroupNorm consumers: nothing moves and the hook says so."""
    opts = TINY + [
        "OUTPUT_DIR", str(tmp_path), "MODEL.LOWLIGHT_NL.NORM_GAMMA_INIT", "0.0",
        "MODEL.LOWLIGHT_NL.LIVENESS_CHECK_ITER", "3",
    ]  # fmt: skip
    cfg = plugin_cfg("configs/LowLightNL/demo.yaml", opts)
    # A handler on the hook's own logger: detectron2's setup_logger may stop propagation above.
    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("lowlight_nl.liveness")
    logger.addHandler(handler)
    try:
        _, hook, _, _ = _train(cfg, 3)
    finally:
        logger.removeHandler(handler)
    assert hook.unmoved == ["res2", "res3", "res4", "res5"]
    assert len(messages) == 1 and "have not moved" in messages[0]
    assert "NORM_GAMMA_INIT" in messages[0]


def test_trainer_installs_the_hook_before_the_writer(tmp_path):
    from detectron2.engine import hooks as d2_hooks

    from d2common.engine import build_trainer
    from lowlight_nl.liveness import NonLocalLivenessHook

    cfg = plugin_cfg("configs/LowLightNL/demo.yaml", TINY + ["OUTPUT_DIR", str(tmp_path)])
    kinds = [type(h) for h in build_trainer(cfg)._hooks]
    assert kinds.index(NonLocalLivenessHook) < kinds.index(d2_hooks.PeriodicWriter)
