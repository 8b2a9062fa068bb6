"""GRMTrainer: PluginTrainer with the paper's AdamW optimizer."""

import torch
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping

from d2common.engine import PluginTrainer
from d2common.registry import TRAINER_REGISTRY


def build_grm_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW (``SOLVER.GRMNET.OPTIMIZER``) or SGD over detectron2's parameter groups."""
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )
    name = cfg.SOLVER.GRMNET.OPTIMIZER
    if name == "AdamW":
        optimizer = torch.optim.AdamW(
            params,
            lr=cfg.SOLVER.BASE_LR,
            betas=tuple(cfg.SOLVER.GRMNET.BETAS),
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        )
    elif name == "SGD":
        optimizer = torch.optim.SGD(
            params,
            lr=cfg.SOLVER.BASE_LR,
            momentum=cfg.SOLVER.MOMENTUM,
            nesterov=cfg.SOLVER.NESTEROV,
        )
    else:
        raise ValueError(f"SOLVER.GRMNET.OPTIMIZER={name!r}: use AdamW or SGD")
    return maybe_add_gradient_clipping(cfg, optimizer)


@TRAINER_REGISTRY.register()
class GRMTrainer(PluginTrainer):
    """Trains GRMNet: the configured mapper / evaluator and AdamW (Sec. 3.1)."""

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_grm_optimizer(cfg, model)
