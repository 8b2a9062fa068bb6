"""Liveness of the weighted non-local blocks during training: logged scalars and a warning.

A block whose blending weight ``w`` and norm scale ``gamma`` never leave their initial values
contributes nothing but ``(1 - w) x``; with normalised consumers that is invisible to the loss,
so a training run would silently compare dead blocks against a baseline.
"""

import logging
from typing import Dict, List

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from .modeling.backbone import nonlocal_blocks_of
from .ops import WeightedNonLocal2d

logger = logging.getLogger(__name__)


def block_statistics(block: WeightedNonLocal2d) -> Dict[str, float]:
    """``w``, the RMS of W_z's norm scale (``gamma``; NaN for a norm without one) and the
    Frobenius norm of W_z's 1x1 conv weight (``wz_norm``) of one block."""
    gamma = getattr(block.out_norm, "weight", None)
    nan = float("nan")
    with torch.no_grad():
        return {
            "w": float(block.blend_weight),
            "gamma": float(gamma.float().square().mean().sqrt()) if gamma is not None else nan,
            "wz_norm": float(block.out_conv.weight.float().norm()),
        }


def stage_of(name: str) -> str:
    """ "backbone.bottom_up.nonlocal_blocks.res4" -> "res4"."""
    return name.rsplit(".", 1)[-1]


def unmoved_blocks(
    blocks: Dict[str, WeightedNonLocal2d], initial: Dict[str, Dict[str, torch.Tensor]], tol: float
) -> List[str]:
    """Names of the blocks whose ``w`` and every entry of gamma are within ``tol`` of ``initial``
    (as returned by :func:`block_state`)."""
    dead = []
    for name, block in blocks.items():
        now = block_state(block)
        moved = [
            float((now[k] - initial[name][k]).abs().max()) > tol for k in now if now[k].numel()
        ]
        if not any(moved):
            dead.append(name)
    return dead


def block_state(block: WeightedNonLocal2d) -> Dict[str, torch.Tensor]:
    """Copies of ``w`` and gamma (empty for a norm without a scale)."""
    gamma = getattr(block.out_norm, "weight", None)
    return {
        "w": block.blend_weight.detach().clone().reshape(1),
        "gamma": gamma.detach().clone() if gamma is not None else torch.zeros(0),
    }


class NonLocalLivenessHook(HookBase):
    """Logs ``wnl/<stage>/{w,gamma,wz_norm}`` (see :func:`block_statistics`) and
    ``wnl/<stage>/gamma_change`` (largest change of a gamma entry since the start of training)
    after every step and, once ``check_iter`` iterations have run, warns about every block still
    at the ``w`` and gamma it started the training with (within ``tol``)."""

    def __init__(self, model: torch.nn.Module, check_iter: int = 50, tol: float = 1e-4):
        """
        Args:
            model: the trained model (DDP-wrapped or not).
            check_iter: iterations after the start of training at which to check; 0: never.
            tol: largest change of ``w`` and of each gamma entry that counts as "not moved".
        """
        model = getattr(model, "module", model)
        self.blocks = {stage_of(n): b for n, b in nonlocal_blocks_of(model)}
        self.check_iter = check_iter
        self.tol = tol
        self._initial = None
        self._start_iter = 0
        self.unmoved: List[str] = []

    def before_train(self):
        self._initial = {name: block_state(b) for name, b in self.blocks.items()}
        self._start_iter = self.trainer.iter

    def after_step(self):
        if not self.blocks:
            return
        storage = self.trainer.storage
        for name, block in self.blocks.items():
            stats = block_statistics(block)
            start = self._initial[name]["gamma"]
            if start.numel():
                now = block.out_norm.weight.detach()
                stats["gamma_change"] = float((now - start.to(now.device)).abs().max())
            for key, value in stats.items():
                storage.put_scalar(f"wnl/{name}/{key}", value, smoothing_hint=False)
        if self.check_iter > 0 and self.trainer.iter + 1 - self._start_iter == self.check_iter:
            self.unmoved = unmoved_blocks(self.blocks, self._initial, self.tol)
            if self.unmoved and comm.is_main_process():
                logger.warning(
                    "Weighted non-local blocks %s: w and W_z's gamma have not moved by more than "
                    "%g in %d iterations (MODEL.LOWLIGHT_NL.LIVENESS_CHECK_ITER). They do not "
                    "learn: with w = 0 and gamma = 0 (MODEL.LOWLIGHT_NL.NORM_GAMMA_INIT) and "
                    "normalised consumers no parameter of a block gets a gradient; check also "
                    "the learning rate and frozen parameters.",
                    self.unmoved,
                    self.tol,
                    self.check_iter,
                )
