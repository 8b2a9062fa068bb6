"""OverheadFusion with SOLVER.AMP.ENABLED on the CPU: a bf16 training step and the repeated
evaluation of the fusion trainer's own test loop."""

import math

import pytest
import torch

from d2common.amp import MixedPrecisionTrainer, inference_model
from d2common.engine import trainer_class
from d2common.testing import run_amp_train_step


@pytest.mark.parametrize("fusion", ["quality", "mean"])
def test_bf16_train_step(tiny_cfg, fusion):
    cfg = tiny_cfg(opts=["MODEL.OVERHEAD_FUSION.FUSION", fusion])
    trainer, storage, dtypes = run_amp_train_step(cfg)
    assert isinstance(trainer._trainer, MixedPrecisionTrainer)
    assert torch.bfloat16 in dtypes
    assert math.isfinite(storage.latest()["total_loss"][0])
    grads = [p.grad for p in trainer.model.seg_net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if fusion == "quality":
        q_grads = [p.grad for p in trainer.model.quality_net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in q_grads)
        assert any(g.abs().sum() > 0 for g in q_grads)


def test_bf16_evaluation_with_repeats(tiny_cfg):
    cfg = tiny_cfg(opts=["SOLVER.AMP.ENABLED", "True", "TEST.OVERHEAD_FUSION.REPEATS", "2"])
    trainer_cls = trainer_class(cfg)
    model = trainer_cls.build_model(cfg)
    seen = []
    model.seg_net.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    results = trainer_cls.test(cfg, model)
    assert seen and set(seen) == {torch.bfloat16}  # the networks ran under autocast
    fusion = results["fusion"]
    assert math.isfinite(fusion["mIoU"]) and "mIoU_std" in fusion

    model.eval()
    views = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        (out,) = inference_model(cfg, model)([{"views": views}])
    assert {out[k].dtype for k in ("sem_seg", "fused", "quality")} == {torch.float32}
    torch.testing.assert_close(out["quality"].sum(0), torch.ones(32, 32))
