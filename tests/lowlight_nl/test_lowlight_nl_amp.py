"""Weighted-NL Mask R-CNN with SOLVER.AMP.ENABLED on the CPU: bf16 training step and evaluation."""

import math

import pytest
import torch

from d2common.amp import MixedPrecisionTrainer, inference_model
from d2common.engine import trainer_class
from d2common.testing import plugin_cfg, run_amp_train_step

TINY = [
    "MODEL.DEVICE", "cpu",
    "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "128",
    "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128",
    "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "64", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
    "MODEL.LOWLIGHT_NL.WEIGHT_INITS", "[0.5, 0.5, 0.5, 0.5]",
]  # fmt: skip


def tiny_cfg(tmp_path, *opts):
    return plugin_cfg(
        "configs/LowLightNL/demo.yaml", TINY + ["OUTPUT_DIR", str(tmp_path)] + list(opts)
    )


@pytest.mark.parametrize(
    "opts",
    [
        [],  # embedded Gaussian, GN backbone (demo.yaml)
        ["MODEL.LOWLIGHT_NL.MODE", "gaussian"],  # the symmetric kernel with an fp32 input
        ["MODEL.LOWLIGHT_NL.MODE", "gaussian", "MODEL.LOWLIGHT_NL.SUB_SAMPLE", "True"],
    ],
    ids=["embedded_gaussian", "gaussian", "gaussian_sub_sample"],
)
def test_bf16_train_step_reaches_every_block(tmp_path, opts):
    trainer, storage, dtypes = run_amp_train_step(tiny_cfg(tmp_path, *opts))
    assert isinstance(trainer._trainer, MixedPrecisionTrainer)
    assert torch.bfloat16 in dtypes
    losses = {k: v[0] for k, v in storage.latest().items() if k.startswith("loss_")}
    assert {"loss_cls", "loss_mask", "loss_rpn_cls"} <= set(losses)
    assert all(math.isfinite(v) for v in losses.values())
    blocks = trainer.model.backbone.bottom_up.nonlocal_blocks
    for stage, block in blocks.items():
        for name, p in block.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{stage}.{name}"
            assert p.dtype == torch.float32  # master weights stay fp32
    assert any(torch.any(p.grad != 0) for p in blocks["res4"].parameters())


def test_bf16_evaluation_gives_fp32_outputs_and_finite_ap(tmp_path):
    cfg = tiny_cfg(tmp_path, "SOLVER.AMP.ENABLED", "True", "TEST.DETECTIONS_PER_IMAGE", "5")
    trainer_cls = trainer_class(cfg)
    model = trainer_cls.build_model(cfg)
    seen = []
    model.roi_heads.box_predictor.register_forward_hook(lambda m, i, out: seen.append(out[0].dtype))
    results = trainer_cls.test(cfg, model)
    assert seen and set(seen) == {torch.bfloat16}  # the heads ran under autocast
    assert all(math.isfinite(results[task]["AP"]) for task in ("bbox", "segm"))

    model.eval()
    image = torch.randint(0, 255, (3, 83, 101), dtype=torch.uint8)
    with torch.no_grad():
        (out,) = inference_model(cfg, model)([{"image": image, "height": 83, "width": 101}])
    instances = out["instances"]
    assert instances.scores.dtype == torch.float32
    assert instances.pred_boxes.tensor.dtype == torch.float32
