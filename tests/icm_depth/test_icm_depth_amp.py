"""ICMDepth with SOLVER.AMP.ENABLED on the CPU: a bf16 training step and an evaluation."""

import math

import pytest
import torch

from d2common.amp import MixedPrecisionTrainer, inference_model
from d2common.engine import trainer_class
from d2common.testing import plugin_cfg, run_amp_train_step

from .test_icm_depth_model import TINY


@pytest.fixture
def tiny_cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "datasets"))

    def make(*opts):
        return plugin_cfg(
            "configs/ICMDepth/demo.yaml", TINY + ["OUTPUT_DIR", str(tmp_path)] + list(opts)
        )

    return make


@pytest.mark.parametrize("update", ["sequential", "independent"])
def test_bf16_train_step(tiny_cfg, update):
    trainer, storage, dtypes = run_amp_train_step(
        tiny_cfg("MODEL.ICM_DEPTH.CLUSTER_UPDATE", update)
    )
    assert isinstance(trainer._trainer, MixedPrecisionTrainer)
    assert torch.bfloat16 in dtypes
    latest = storage.latest()
    losses = {k: latest[k][0] for k in ("loss_silog", "loss_icm_f1", "loss_icm_f2", "loss_icm_f3")}
    assert all(math.isfinite(v) for v in losses.values())
    model = trainer.model
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bf16_evaluation(tiny_cfg):
    cfg = tiny_cfg("SOLVER.AMP.ENABLED", "True")
    trainer_cls = trainer_class(cfg)
    model = trainer_cls.build_model(cfg)
    results = trainer_cls.test(cfg, model)
    assert all(math.isfinite(v) for v in results["depth"].values())
    model.eval()
    image = torch.randint(0, 255, (3, 45, 70), dtype=torch.uint8)
    with torch.no_grad():
        (out,) = inference_model(cfg, model)([{"image": image, "height": 90, "width": 140}])
        (ref,) = model([{"image": image, "height": 90, "width": 140}])
    assert out["depth"].dtype == torch.float32 and out["depth"].shape == (90, 140)
    # bf16 forward of an untrained model: depths within a few percent of the fp32 ones.
    assert ((out["depth"] - ref["depth"]).abs() / ref["depth"]).median() < 0.05
