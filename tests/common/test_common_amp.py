"""d2common.amp: device-agnostic AMP trainer, autocast inference and fp32 outputs."""

import itertools

import pytest
import torch
from detectron2.engine import defaults as d2_defaults
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage
from torch import nn

from d2common.amp import (
    AutocastInference,
    MixedPrecisionTrainer,
    NonFiniteStepGuard,
    amp_dtype,
    inference_model,
    make_grad_scaler,
    mixed_precision_trainer,
    outputs_to_float32,
)
from d2common.testing import cuda_devices, plugin_cfg


class _Regressor(nn.Module):
    """A linear model whose forward returns detectron2-style losses and records its dtype."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.seen = []

    def forward(self, batch):
        x, y = batch
        out = self.linear(x)
        self.seen.append(out.dtype)
        return {"loss_mse": ((out.float() - y) ** 2).mean()}


@pytest.mark.parametrize("device", cuda_devices())
def test_mixed_precision_trainer_step(device):
    torch.manual_seed(0)
    model = _Regressor().to(device)
    x = torch.randn(8, 4, device=device)
    batch = (x, x.sum(1, keepdim=True))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = MixedPrecisionTrainer(model, itertools.repeat(batch), optimizer, device=device)
    assert trainer.precision == amp_dtype(device)
    assert trainer.grad_scaler.is_enabled() == (device == "cuda")
    before = model.linear.weight.detach().clone()
    with EventStorage(0) as storage:
        trainer.run_step()
    assert model.seen == [amp_dtype(device)]
    assert "total_loss" in storage.latest()  # a single loss is logged as total_loss
    assert not torch.equal(before, model.linear.weight)
    assert model.linear.weight.dtype == torch.float32

    state = trainer.state_dict()
    assert "grad_scaler" in state
    trainer.load_state_dict(state)
    del state["grad_scaler"]  # a checkpoint of an fp32 run
    trainer.load_state_dict(state)


def test_amp_dtypes_and_unsupported_device():
    assert amp_dtype("cpu") == torch.bfloat16
    assert amp_dtype("cuda:1") == torch.float16
    assert not make_grad_scaler("cpu").is_enabled()
    with pytest.raises(ValueError, match="MODEL.DEVICE='meta'"):
        amp_dtype("meta")
    cfg = plugin_cfg(None, ["SOLVER.AMP.ENABLED", "True"])
    cfg.MODEL.DEVICE = "meta"
    with pytest.raises(ValueError, match="SOLVER.AMP.ENABLED"):
        with mixed_precision_trainer(cfg):
            pass


def test_mixed_precision_trainer_replaces_amp_trainer_only_inside_the_context():
    original = d2_defaults.AMPTrainer
    cfg = plugin_cfg(None, ["SOLVER.AMP.ENABLED", "True", "MODEL.DEVICE", "cpu"])
    with mixed_precision_trainer(cfg):
        assert d2_defaults.AMPTrainer.func is MixedPrecisionTrainer
        assert d2_defaults.AMPTrainer.keywords == {"device": "cpu"}
    assert d2_defaults.AMPTrainer is original


def test_outputs_to_float32_casts_nested_structures_without_mutating_them():
    boxes = Boxes(torch.rand(3, 4))
    boxes.tensor = boxes.tensor.to(torch.bfloat16)  # Boxes() itself would cast to fp32
    inst = Instances((5, 7), pred_boxes=boxes, scores=torch.rand(3).half())
    inst.pred_masks = BitMasks(torch.zeros(3, 5, 7, dtype=torch.bool))
    inst.pred_classes = torch.tensor([0, 1, 2])
    outputs = [
        {"instances": inst, "depth": torch.rand(2, 2).half(), "ref": torch.zeros(1).double()}
    ]
    cast = outputs_to_float32(outputs)
    out = cast[0]["instances"]
    assert out.image_size == (5, 7)
    assert out.pred_boxes.tensor.dtype == out.scores.dtype == torch.float32
    assert out.pred_masks.tensor.dtype == torch.bool
    assert out.pred_classes.dtype == torch.int64
    assert cast[0]["depth"].dtype == torch.float32
    assert cast[0]["ref"].dtype == torch.float64  # float64 is left alone
    torch.testing.assert_close(out.pred_boxes.tensor, boxes.tensor.float())
    assert inst.pred_boxes.tensor.dtype == torch.bfloat16  # the input is unchanged
    assert outputs_to_float32((torch.ones(1).half(),))[0].dtype == torch.float32


def test_autocast_inference_wrapper():
    model = _Regressor()
    cfg = plugin_cfg(None, ["MODEL.DEVICE", "cpu"])
    assert inference_model(cfg, model) is model  # AMP off: the model itself
    cfg.SOLVER.AMP.ENABLED = True
    wrapped = inference_model(cfg, model)
    assert isinstance(wrapped, AutocastInference) and inference_model(cfg, wrapped) is wrapped
    wrapped.eval()
    assert not model.training
    x = torch.randn(2, 4)
    out = wrapped((x, x))
    assert model.seen == [torch.bfloat16] and out["loss_mse"].dtype == torch.float32
    wrapped.train()
    assert model.training


class _PoisonedRegressor(_Regressor):
    """Its loss's gradient is NaN while ``poison`` is set (a finite loss, as after an overflow
    inside a low-precision backward)."""

    poison = False

    def forward(self, batch):
        losses = super().forward(batch)
        if self.poison:
            nan = lambda g: torch.full_like(g, float("nan"))  # noqa: E731
            self.hooks = [self.linear.weight.register_hook(nan)]
        return losses


def test_bfloat16_step_with_non_finite_gradients_is_skipped_counted_and_logged(caplog):
    torch.manual_seed(0)
    model = _PoisonedRegressor()
    x = torch.randn(8, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = MixedPrecisionTrainer(
        model, itertools.repeat((x, x.sum(1, keepdim=True))), optimizer, device="cpu"
    )
    assert isinstance(trainer.grad_scaler, NonFiniteStepGuard)
    with EventStorage(0) as storage:
        model.poison = True
        before = model.linear.weight.detach().clone()
        trainer.run_step()
        for hook in model.hooks:
            hook.remove()
        assert torch.equal(before, model.linear.weight)  # not written into the weights
        assert trainer.grad_scaler.skipped_steps == 1
        assert storage.latest()["amp/skipped_steps"][0] == 1
        assert "step skipped" in caplog.text
        model.poison = False
        trainer.run_step()  # a finite step goes through and resets the run of skips
        assert not torch.equal(before, model.linear.weight)
        assert trainer.grad_scaler.consecutive_skips == 0


def test_guard_raises_after_consecutive_non_finite_steps():
    layer = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    guard = NonFiniteStepGuard("cpu", max_consecutive_skips=3)
    layer.weight.grad = torch.tensor([[float("inf"), 0.0]])
    layer.bias.grad = torch.zeros(1)
    guard.step(optimizer)
    guard.step(optimizer)
    with pytest.raises(FloatingPointError, match="3 optimizer steps in a row"):
        guard.step(optimizer)
    assert guard.scale(torch.tensor(2.0)) == 2.0 and not guard.is_enabled()
    assert make_grad_scaler("cpu", enabled=False).__class__ is not NonFiniteStepGuard
