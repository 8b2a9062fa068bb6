"""Weighted-NL Mask R-CNN: build, training steps with backward, inference, checkpoints."""

import pytest
import torch

from d2common.testing import plugin_cfg, run_train_steps

TINY = [
    "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "128",
    "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128",
    "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "64", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
]  # fmt: skip


def tiny_cfg(tmp_path, *opts):
    return plugin_cfg(
        "configs/LowLightNL/demo.yaml", TINY + ["OUTPUT_DIR", str(tmp_path)] + list(opts)
    )


def _blocks(model):
    return dict(model.backbone.bottom_up.nonlocal_blocks.items())


def test_train_steps_reach_every_nonlocal_parameter(tmp_path):
    """Two steps in the paper's training mode (heads frozen) from the default init (w = 0,
    gamma = 1) under the demo's GroupNorm: the first step moves w, the second reaches every
    parameter of every block. Only phi's bias has no gradient in exact arithmetic (it shifts
    every logit of a softmax row); its float32 value (~1e-12) is the rounding level."""
    cfg = tiny_cfg(
        tmp_path,
        "MODEL.LOWLIGHT_NL.TRAIN_BACKBONE_ONLY", "True", "SOLVER.WARMUP_ITERS", "0", "SEED", "0",
    )  # fmt: skip
    assert cfg.MODEL.LOWLIGHT_NL.WEIGHT_INITS == [0.0] * 4
    trainer, storage = run_train_steps(cfg, 2)
    model = trainer.model
    assert not any(p.requires_grad for p in model.roi_heads.parameters())
    assert not any(p.requires_grad for p in model.proposal_generator.parameters())
    assert any(p.grad is not None for p in model.backbone.fpn_lateral2.parameters())
    blocks = _blocks(model)
    assert sorted(blocks) == ["res2", "res3", "res4", "res5"]
    assert blocks["res2"].inner_channels == 64 // 4 and blocks["res3"].inner_channels == 128 // 2
    latest = storage.latest()
    assert all(torch.isfinite(torch.tensor(latest[k][0])) for k in latest if k.startswith("loss"))
    for stage, block in blocks.items():
        assert float(block.blend_weight) != 0.0
        norms = {n: float(p.grad.norm()) for n, p in block.named_parameters()}
        assert norms["phi.bias"] < 1e-10, f"{stage}: {norms}"
        dead = [n for n, v in norms.items() if v < 1e-10 and n != "phi.bias"]
        assert not dead, f"{stage}: no gradient for {dead} ({norms})"


def test_inference_on_odd_sizes_and_identity_at_init(tmp_path):
    cfg = tiny_cfg(tmp_path)
    from detectron2.modeling import build_model

    model = build_model(cfg).eval()
    images = [torch.randint(0, 255, (3, h, w), dtype=torch.uint8) for h, w in [(83, 101), (64, 47)]]
    with torch.no_grad():
        outputs = model(
            [{"image": im, "height": im.shape[1], "width": im.shape[2]} for im in images]
        )
        assert [tuple(o["instances"].image_size) for o in outputs] == [(83, 101), (64, 47)]
        # w = 0 at initialisation: every block is the identity, as the pretrained ResNet.
        assert float(_blocks(model)["res2"].out_norm.weight.min()) == 1.0
        x = torch.randn(1, 64, 10, 12)
        torch.testing.assert_close(_blocks(model)["res2"](x), x)


def test_checkpoint_layout_matches_the_stock_resnet(tmp_path):
    from detectron2.modeling import build_model

    wnl = build_model(tiny_cfg(tmp_path))
    stock = build_model(tiny_cfg(tmp_path, "MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone"))
    extra = set(wnl.state_dict()) - set(stock.state_dict())
    assert set(stock.state_dict()) <= set(wnl.state_dict())
    assert extra and all(".nonlocal_blocks." in k for k in extra)
    missing, unexpected = wnl.load_state_dict(stock.state_dict(), strict=False)
    assert not unexpected and all(".nonlocal_blocks." in k for k in missing)


def test_block_after_frozen_stage_still_trains(tmp_path):
    from detectron2.modeling import build_model

    cfg = tiny_cfg(tmp_path, "MODEL.BACKBONE.FREEZE_AT", "2")
    model = build_model(cfg)
    assert not any(p.requires_grad for p in model.backbone.bottom_up.res2.parameters())
    assert all(p.requires_grad for p in _blocks(model)["res2"].parameters())


@pytest.mark.parametrize(
    "opts, message",
    [
        (["MODEL.LOWLIGHT_NL.MODE", "cosine"], "unknown non-local mode"),
        (["MODEL.LOWLIGHT_NL.NORM", "FrozenBN"], "trainable"),
        (["MODEL.LOWLIGHT_NL.STAGES", "['res6']"], "unknown stage"),
        (["MODEL.LOWLIGHT_NL.REDUCTIONS", "[2, 2]"], "one value per stage"),
        (["MODEL.LOWLIGHT_NL.ATTENTION_BACKEND", "flash3"], "unknown attention backend"),
    ],
)
def test_bad_model_config_fails_at_build(tmp_path, opts, message):
    from detectron2.modeling import build_model

    with pytest.raises(ValueError, match=message):
        build_model(tiny_cfg(tmp_path, *opts))


def test_attention_backend_reaches_every_block(tmp_path):
    from detectron2.modeling import build_model

    model = build_model(tiny_cfg(tmp_path, "MODEL.LOWLIGHT_NL.ATTENTION_BACKEND", "chunked"))
    assert {b.attention_backend for b in _blocks(model).values()} == {"chunked"}


def test_unknown_key_fails_at_start(tmp_path):
    with pytest.raises((KeyError, AssertionError), match="NON_EXISTENT"):
        tiny_cfg(tmp_path, "MODEL.LOWLIGHT_NL.NON_EXISTENT", "1")
