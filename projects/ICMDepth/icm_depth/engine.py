"""ICMDepth's trainer: PluginTrainer with AdamW and a smaller encoder learning rate (iDisc)."""

import torch
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping

from d2common.engine import PluginTrainer
from d2common.registry import TRAINER_REGISTRY

_ENCODER_PREFIX = "backbone.encoder."


@TRAINER_REGISTRY.register()
class ICMDepthTrainer(PluginTrainer):
    """``SOLVER.ICM_DEPTH.OPTIMIZER`` (AdamW / SGD); the encoder's learning rate is scaled by
    ``SOLVER.ICM_DEPTH.ENCODER_LR_FACTOR``; no weight decay on norms, biases and clusters."""

    @classmethod
    def build_optimizer(cls, cfg, model):
        s = cfg.SOLVER.ICM_DEPTH
        factor = s.ENCODER_LR_FACTOR
        params = get_default_optimizer_params(
            model,
            base_lr=cfg.SOLVER.BASE_LR,
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
            weight_decay_norm=0.0,
            weight_decay_bias=0.0,
            lr_factor_func=lambda name: factor if name.startswith(_ENCODER_PREFIX) else 1.0,
            overrides={"clusters": {"weight_decay": 0.0}},
        )
        if s.OPTIMIZER == "AdamW":
            optimizer = torch.optim.AdamW(params, lr=cfg.SOLVER.BASE_LR, betas=tuple(s.BETAS))
        elif s.OPTIMIZER == "SGD":
            optimizer = torch.optim.SGD(params, lr=cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM)
        else:
            raise ValueError(
                f"SOLVER.ICM_DEPTH.OPTIMIZER must be AdamW or SGD, got {s.OPTIMIZER!r}"
            )
        return maybe_add_gradient_clipping(cfg, optimizer)
