"""Mixed precision (``SOLVER.AMP.ENABLED``) on any device, for training and for evaluation.

CUDA runs autocast in float16 with a gradient scaler (detectron2's AMP setting); the CPU runs
autocast in bfloat16 without a scaler (bfloat16 keeps float32's exponent range, so gradients do
not underflow). detectron2's ``AMPTrainer`` asserts CUDA; :class:`MixedPrecisionTrainer` is the
same loop on either device. Evaluation runs the model under the same autocast and hands float32
outputs to the evaluators.
"""

import contextlib
import copy
import functools
import logging
import time

import torch
from detectron2.engine import AMPTrainer
from detectron2.engine import defaults as d2_defaults
from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage
from torch import nn
from torch.amp import GradScaler

__all__ = [
    "amp_dtype",
    "autocast",
    "make_grad_scaler",
    "NonFiniteStepGuard",
    "MixedPrecisionTrainer",
    "mixed_precision_trainer",
    "AutocastInference",
    "inference_model",
    "outputs_to_float32",
]

_AMP_DTYPES = {"cuda": torch.float16, "cpu": torch.bfloat16}


def amp_dtype(device) -> torch.dtype:
    """Autocast dtype of a device: float16 on CUDA, bfloat16 on the CPU."""
    device_type = torch.device(device).type
    if device_type not in _AMP_DTYPES:
        raise ValueError(
            f"SOLVER.AMP.ENABLED: mixed precision is supported on {sorted(_AMP_DTYPES)}, "
            f"not on MODEL.DEVICE={device!r}"
        )
    return _AMP_DTYPES[device_type]


def autocast(device, enabled: bool = True):
    """``torch.autocast`` of ``device`` in :func:`amp_dtype` (a no-op when not ``enabled``)."""
    device_type = torch.device(device).type
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=amp_dtype(device))


def make_grad_scaler(device, enabled: bool = True):
    """A gradient scaler for float16 autocast (CUDA); a pass-through one otherwise.

    A disabled scaler's ``scale(loss)`` returns ``loss`` and ``step(opt)`` calls ``opt.step()``,
    so one training loop serves fp32, bfloat16 and float16. For bfloat16 autocast (``enabled``
    on the CPU) it is a :class:`NonFiniteStepGuard`: no scaling, but a step whose gradients are
    not finite is skipped, as the float16 scaler does.
    """
    device_type = torch.device(device).type
    low_precision = amp_dtype(device)
    if enabled and low_precision == torch.bfloat16:
        return NonFiniteStepGuard(device_type)
    return GradScaler(device_type, enabled=enabled and low_precision == torch.float16)


class NonFiniteStepGuard(GradScaler):
    """The bfloat16 counterpart of a gradient scaler: scales nothing, skips non-finite steps.

    bfloat16 has float32's exponent range, so gradients need no scaling; but an overflow in a
    low-precision backward (e.g. batch statistics over a handful of values) still yields inf or
    NaN gradients, which the float16 scaler would catch and which ``opt.step()`` would write
    into the weights. ``step(optimizer)`` skips the step when any gradient of ``optimizer`` is not
    finite, counts it (``skipped_steps``; logged as ``amp/skipped_steps`` when an event storage is
    active) and warns; ``max_consecutive_skips`` skipped steps in a row raise
    ``FloatingPointError``, since without a scale to lower nothing would change.
    """

    def __init__(self, device_type: str = "cpu", max_consecutive_skips: int = 20):
        super().__init__(device_type, enabled=False)
        self.max_consecutive_skips = max_consecutive_skips
        self.skipped_steps = 0
        self.consecutive_skips = 0

    def step(self, optimizer, *args, **kwargs):
        bad = _non_finite_gradients(optimizer)
        if not bad:
            self.consecutive_skips = 0
            return optimizer.step(*args, **kwargs)
        self.skipped_steps += 1
        self.consecutive_skips += 1
        logging.getLogger(__name__).warning(
            "bfloat16 autocast: %d of %d gradient tensors are not finite; optimizer step skipped "
            "(%d skipped so far)",
            bad,
            sum(1 for g in optimizer.param_groups for p in g["params"] if p.grad is not None),
            self.skipped_steps,
        )
        _put_scalar("amp/skipped_steps", self.skipped_steps)
        if self.consecutive_skips >= self.max_consecutive_skips:
            raise FloatingPointError(
                f"bfloat16 autocast: {self.consecutive_skips} optimizer steps in a row had "
                "non-finite gradients; training has diverged"
            )
        return None


def _non_finite_gradients(optimizer) -> int:
    """Number of gradient tensors of ``optimizer``'s parameters with an inf or NaN."""
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if not grads:
        return 0
    flags = torch.stack([~torch.isfinite(g).all() for g in grads])
    return int(flags.sum())


def _put_scalar(name: str, value: float) -> None:
    try:
        storage = get_event_storage()
    except AssertionError:  # outside a trainer
        return
    storage.put_scalar(name, value, smoothing_hint=False)


class MixedPrecisionTrainer(AMPTrainer):
    """detectron2's ``AMPTrainer`` on CUDA (float16, scaled gradients) and on the CPU (bfloat16).

    The loop is ``AMPTrainer.run_step`` with ``torch.autocast`` of the model's device instead of
    the CUDA-only autocast. The scaler state is checkpointed as ``grad_scaler``; a checkpoint
    without one (an fp32 run, or a bfloat16 run whose scaler was disabled) resumes with a fresh
    scaler.
    """

    def __init__(self, model, data_loader, optimizer, *, device, **kwargs):
        """
        Args:
            model, data_loader, optimizer, kwargs: see ``AMPTrainer``.
            device: the model's device (``MODEL.DEVICE``), "cuda[:i]" or "cpu".
        """
        kwargs.setdefault("grad_scaler", make_grad_scaler(device))
        super().__init__(model, data_loader, optimizer, precision=amp_dtype(device), **kwargs)
        self.device_type = torch.device(device).type

    def run_step(self):
        assert self.model.training, "[MixedPrecisionTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        with torch.autocast(self.device_type, dtype=self.precision):
            loss_dict = self.model(data)
            if isinstance(loss_dict, torch.Tensor):
                losses = loss_dict
                loss_dict = {"total_loss": loss_dict}
            else:
                losses = sum(loss_dict.values())
        if not self.zero_grad_before_forward:
            self.optimizer.zero_grad()

        self.grad_scaler.scale(losses).backward()
        if self.log_grad_scaler:
            get_event_storage().put_scalar("[metric]grad_scaler", self.grad_scaler.get_scale())
        self.after_backward()
        if self.async_write_metrics:
            self.concurrent_executor.submit(
                self._write_metrics, loss_dict, data_time, iter=self.iter
            )
        else:
            self._write_metrics(loss_dict, data_time)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def load_state_dict(self, state_dict):
        if state_dict.get("grad_scaler"):
            super().load_state_dict(state_dict)
        else:
            super(AMPTrainer, self).load_state_dict(state_dict)


@contextlib.contextmanager
def mixed_precision_trainer(cfg):
    """While active, ``DefaultTrainer.__init__`` builds a :class:`MixedPrecisionTrainer` for
    ``SOLVER.AMP.ENABLED`` on ``cfg.MODEL.DEVICE`` instead of the CUDA-only ``AMPTrainer``."""
    if cfg.SOLVER.AMP.ENABLED:
        amp_dtype(cfg.MODEL.DEVICE)  # unsupported devices fail here, with the config key
    original = d2_defaults.AMPTrainer
    d2_defaults.AMPTrainer = functools.partial(MixedPrecisionTrainer, device=cfg.MODEL.DEVICE)
    try:
        yield
    finally:
        d2_defaults.AMPTrainer = original


class AutocastInference(nn.Module):
    """Runs ``model`` under :func:`autocast` and returns its outputs in float32.

    A module, so that ``inference_on_dataset``'s ``eval()`` / ``train()`` reach the model.
    """

    def __init__(self, model: nn.Module, device):
        super().__init__()
        self.model = model
        self.device = torch.device(device)

    def forward(self, *args, **kwargs):
        with autocast(self.device):
            outputs = self.model(*args, **kwargs)
        return outputs_to_float32(outputs)


def inference_model(cfg, model: nn.Module) -> nn.Module:
    """``model`` wrapped in :class:`AutocastInference` when ``SOLVER.AMP.ENABLED``, else itself."""
    if not cfg.SOLVER.AMP.ENABLED or isinstance(model, AutocastInference):
        return model
    return AutocastInference(model, cfg.MODEL.DEVICE)


def outputs_to_float32(obj):
    """Casts the half / bfloat16 tensors in (nested) outputs to float32 for the metrics.

    Handles tensors, dicts, lists, tuples, ``Instances`` and structures holding a ``tensor``
    (``Boxes``, ``BitMasks``, ...); anything else is returned as it is.
    """
    if isinstance(obj, torch.Tensor):
        return obj.float() if obj.dtype in (torch.float16, torch.bfloat16) else obj
    if isinstance(obj, dict):
        return type(obj)((k, outputs_to_float32(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(outputs_to_float32(v) for v in obj)
    if isinstance(obj, Instances):
        fields = {k: outputs_to_float32(v) for k, v in obj.get_fields().items()}
        return Instances(obj.image_size, **fields)
    if isinstance(getattr(obj, "tensor", None), torch.Tensor):
        cast = outputs_to_float32(obj.tensor)
        if cast is not obj.tensor:
            obj = copy.copy(obj)
            obj.tensor = cast
    return obj
