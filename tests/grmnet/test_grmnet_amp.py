"""GRMNet with SOLVER.AMP.ENABLED on the CPU: a bf16 training step and an evaluation."""

import math

import torch

from d2common.amp import MixedPrecisionTrainer, inference_model
from d2common.engine import trainer_class
from d2common.testing import run_amp_train_step
from grmnet.ops import grm_feature_dim

from .test_grmnet_model import tiny_cfg as model_tiny_cfg


def tiny_cfg(tmp_path, toy_root, monkeypatch):
    return model_tiny_cfg(tmp_path, toy_root, monkeypatch, "TEST.DETECTIONS_PER_IMAGE", "5")


def test_bf16_train_step(tmp_path, registered_toy, monkeypatch):
    cfg = tiny_cfg(tmp_path, registered_toy, monkeypatch)
    trainer, storage, dtypes = run_amp_train_step(cfg)
    assert isinstance(trainer._trainer, MixedPrecisionTrainer)
    assert torch.bfloat16 in dtypes
    losses = {k: v[0] for k, v in storage.latest().items() if k.startswith("loss_")}
    assert {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls"} <= set(losses)
    assert all(math.isfinite(v) for v in losses.values())
    missing = [n for n, p in trainer.model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert all(
        torch.isfinite(p.grad).all() for p in trainer.model.parameters() if p.grad is not None
    )
    # The box head's weights of the GRM channels (the last K * d + 5) got a finite, non-zero
    # gradient: the saturated bf16 GRM vectors reached the loss.
    g = cfg.MODEL.GRMNET.GRM
    grm_dim = grm_feature_dim(g.TOP_K, g.RELATIVE, g.ABSOLUTE)
    fc1 = trainer.model.roi_heads.box_head.fc1
    res = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
    grad = fc1.weight.grad.view(fc1.out_features, -1, res * res)[:, -grm_dim:]
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_bf16_evaluation(tmp_path, registered_toy, monkeypatch):
    cfg = tiny_cfg(tmp_path, registered_toy, monkeypatch)
    cfg.SOLVER.AMP.ENABLED = True
    trainer_cls = trainer_class(cfg)
    model = trainer_cls.build_model(cfg)
    results = trainer_cls.test(cfg, model)
    assert math.isfinite(results["bbox"]["AP"])
    model.eval()
    image = torch.rand(3, 77, 101) * 255
    with torch.no_grad():
        (out,) = inference_model(cfg, model)(
            [{"image": image, "expression_tokens": torch.tensor([2, 3] + [0] * 13)}]
        )
    assert out["instances"].scores.dtype == torch.float32
    assert out["instances"].image_size == (77, 101)
