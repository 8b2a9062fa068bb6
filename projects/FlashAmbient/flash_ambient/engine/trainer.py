"""Alternating discriminator / generator training on detectron2's ``DefaultTrainer`` machinery."""

import logging
import math
import time

import numpy as np
import torch
from detectron2.engine import SimpleTrainer
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage

from d2common.amp import autocast, make_grad_scaler
from d2common.engine import PluginTrainer, create_ddp_model_any_device
from d2common.registry import TRAINER_REGISTRY

from ..modeling import FlashAmbientGANLoss, build_flash_ambient_discriminator

logger = logging.getLogger(__name__)


class FlashAmbientGANStep(SimpleTrainer):
    """One iteration: generator forward, a D step, then a G step (pix2pix order).

    ``model`` is the generator meta-architecture (possibly DDP-wrapped); ``discriminator`` may be
    None (reconstruction loss only). Generator losses go to EventStorage like detectron2's
    (``total_loss``, ``loss_l1``, ``loss_g_adv``), discriminator losses as ``loss_d_real``,
    ``loss_d_fake`` and ``d_total_loss``.

    With ``amp``, forwards and losses run under autocast (float16 on CUDA, bfloat16 on the CPU)
    and each network's backward and step go through its own gradient scaler (float16 only), so an
    overflow in one network's step skips that step alone.

    During the G step the discriminator is frozen (``requires_grad`` off) and called without its
    DDP wrapper: its gradients are neither computed nor all-reduced, and the ``.grad`` left by the
    D step stays as it was. A non-finite loss of either network raises ``FloatingPointError``
    naming the loss and the iteration, before that network's optimiser steps.
    """

    def __init__(
        self,
        model,
        data_loader,
        optimizer,
        *,
        loss,
        discriminator,
        optimizer_d,
        scheduler_d,
        amp: bool = False,
        device="cpu",
    ):
        super().__init__(model, data_loader, optimizer)
        self.loss = loss
        self.discriminator = discriminator
        self.optimizer_d = optimizer_d
        self.scheduler_d = scheduler_d
        self.amp = amp
        self.device = device
        self.grad_scaler = make_grad_scaler(device, enabled=amp)
        self.grad_scaler_d = make_grad_scaler(device, enabled=amp)
        if discriminator is not None:
            discriminator.train()

    def run_step(self):
        assert self.model.training, "[FlashAmbientGANStep] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        with autocast(self.device, self.amp):
            outputs = self.model(data)
        d_losses = {}
        if self.discriminator is not None:
            with autocast(self.device, self.amp):
                d_losses = self.loss.discriminator_losses(outputs, self.discriminator)
            _check_finite(d_losses, self.iter, "discriminator")
            self.optimizer_d.zero_grad()
            self.grad_scaler_d.scale(sum(d_losses.values())).backward()
            self.grad_scaler_d.step(self.optimizer_d)
            self.grad_scaler_d.update()
            self.scheduler_d.step()

        discriminator = _unwrap(self.discriminator)
        with _frozen(discriminator), autocast(self.device, self.amp):
            g_losses = self.loss.generator_losses(outputs, discriminator)
        _check_finite(g_losses, self.iter, "generator")
        self.optimizer.zero_grad()
        self.grad_scaler.scale(sum(g_losses.values())).backward()
        self.after_backward()
        self._write_metrics(g_losses, data_time)
        self._write_discriminator_metrics(d_losses, outputs)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def state_dict(self):
        ret = super().state_dict()
        if self.amp:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
            ret["grad_scaler_d"] = self.grad_scaler_d.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        # fp32 and bfloat16 runs leave no scaler state (empty when disabled): keep fresh scalers.
        if self.amp and state_dict.get("grad_scaler"):
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
            self.grad_scaler_d.load_state_dict(state_dict["grad_scaler_d"])

    def _write_discriminator_metrics(self, d_losses, outputs):
        metrics = {k: v.detach().cpu().item() for k, v in d_losses.items()}
        if outputs["attention"] is not None:
            metrics["attention_mean"] = outputs["attention"].detach().mean().cpu().item()
        all_metrics = comm.gather(metrics)
        if not comm.is_main_process() or not metrics:
            return
        storage = get_event_storage()
        means = {k: float(np.mean([m[k] for m in all_metrics])) for k in metrics}
        if d_losses:
            means["d_total_loss"] = sum(means[k] for k in d_losses)
            means["lr_d"] = self.optimizer_d.param_groups[0]["lr"]
        storage.put_scalars(cur_iter=self.iter, **means)


def _unwrap(module):
    """The module inside a DDP wrapper (or the module itself, or None)."""
    return getattr(module, "module", module)


class _frozen:
    """Turns ``requires_grad`` off for a module's parameters inside the block (None: no-op)."""

    def __init__(self, module):
        self.params = [] if module is None else [p for p in module.parameters() if p.requires_grad]

    def __enter__(self):
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p in self.params:
            p.requires_grad_(True)


def _check_finite(losses, iteration, network):
    """Raises ``FloatingPointError`` naming each non-finite loss of ``network``, as detectron2."""
    values = {k: float(v.detach()) for k, v in losses.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise FloatingPointError(
            f"{network} loss became infinite or NaN at iteration={iteration}: "
            f"{', '.join(bad)} (loss_dict = {values})"
        )


@TRAINER_REGISTRY.register()
class FlashAmbientGANTrainer(PluginTrainer):
    """``PluginTrainer`` with a second network and optimiser: the discriminator.

    Both networks use Adam (``SOLVER.FLASH_AMBIENT.BETAS``; lr ``SOLVER.BASE_LR`` for G and
    ``SOLVER.FLASH_AMBIENT.D_BASE_LR`` for D, both following ``SOLVER``'s schedule). The
    checkpoint holds the generator (``model``), its optimiser (``trainer``), and the extra
    checkpointables ``discriminator``, ``optimizer_d`` and ``scheduler_d``, so ``--resume``
    restores all of them. ``MODEL.FLASH_AMBIENT.DISCRIMINATOR.NAME: ""`` trains G alone.
    ``SOLVER.AMP.ENABLED`` trains both under autocast with one gradient scaler each (checkpointed
    with the trainer state). ``SOLVER.CLIP_GRADIENTS`` clips both networks' gradients as
    detectron2's ``maybe_add_gradient_clipping`` does (per parameter, "value" or "norm"), after
    the gradient scaler has unscaled them.
    """

    def __init__(self, cfg):
        super().__init__(cfg)
        discriminator = self.build_discriminator(cfg)
        optimizer_d = scheduler_d = None
        if discriminator is not None:
            optimizer_d = self.build_optimizer_d(cfg, discriminator)
            scheduler_d = self.build_lr_scheduler(cfg, optimizer_d)
            self.checkpointer.add_checkpointable("discriminator", discriminator)
            self.checkpointer.add_checkpointable("optimizer_d", optimizer_d)
            self.checkpointer.add_checkpointable("scheduler_d", scheduler_d)
            discriminator = create_ddp_model_any_device(discriminator, broadcast_buffers=False)
        self._trainer = FlashAmbientGANStep(
            self._trainer.model,
            self._trainer.data_loader,
            self._trainer.optimizer,
            loss=FlashAmbientGANLoss(cfg),
            discriminator=discriminator,
            optimizer_d=optimizer_d,
            scheduler_d=scheduler_d,
            amp=cfg.SOLVER.AMP.ENABLED,
            device=cfg.MODEL.DEVICE,
        )

    @classmethod
    def build_discriminator(cls, cfg):
        """The discriminator named by the config (None for reconstruction-only training)."""
        discriminator = build_flash_ambient_discriminator(cfg)
        if discriminator is not None:
            logger.info("Discriminator:\n%s", discriminator)
        return discriminator

    @classmethod
    def build_optimizer(cls, cfg, model):
        """Adam over the generator's trainable parameters (a frozen encoder is left out)."""
        return _adam(cfg, model, cfg.SOLVER.BASE_LR)

    @classmethod
    def build_optimizer_d(cls, cfg, discriminator):
        """Adam over the discriminator's parameters with ``SOLVER.FLASH_AMBIENT.D_BASE_LR``."""
        return _adam(cfg, discriminator, cfg.SOLVER.FLASH_AMBIENT.D_BASE_LR)


def _adam(cfg, module, lr):
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if clip.ENABLED and clip.CLIP_TYPE not in ("value", "norm"):
        raise ValueError(
            f"SOLVER.CLIP_GRADIENTS.CLIP_TYPE {clip.CLIP_TYPE!r} is not supported by the "
            "FlashAmbient GAN optimisers: use 'value' or 'norm' (per parameter, as detectron2)"
        )
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(module).__name__} has no trainable parameters to optimise")
    return maybe_add_gradient_clipping(cfg, torch.optim.Adam)(
        params,
        lr=lr,
        betas=tuple(cfg.SOLVER.FLASH_AMBIENT.BETAS),
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
    )
