"""ICMDepth's trainer: PluginTrainer with AdamW and a smaller encoder learning rate (iDisc)."""

import re
from typing import Any, Dict, List, Sequence

import torch
from detectron2.solver.build import maybe_add_gradient_clipping, reduce_param_groups
from torch import nn

from d2common.engine import PluginTrainer
from d2common.registry import TRAINER_REGISTRY

_ENCODER_PREFIX = "backbone.encoder."
_NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def optimizer_param_groups(
    model: nn.Module,
    *,
    base_lr: float,
    weight_decay: float,
    encoder_lr_factor: float = 1.0,
    no_decay_patterns: Sequence[str] = (),
) -> List[Dict[str, Any]]:
    """Parameter groups with weight decay and learning rate chosen by FULL parameter name.

    No weight decay on parameters of normalisation layers, on biases and on every parameter
    whose full name (``decoder.clusters``, ``decoder.clusters.0``, ...) matches one of
    ``no_decay_patterns`` (``re.search``); matching full names, not the name inside the owning
    module, treats a ``ParameterList`` entry like a plain parameter. Parameters under
    ``backbone.encoder.`` get ``encoder_lr_factor`` times the learning rate.

    Returns:
        groups for a ``torch.optim`` optimizer (merged by identical hyper-parameters).
    """
    patterns = [re.compile(p) for p in no_decay_patterns]
    groups, seen = [], set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or param in seen:
                continue
            seen.add(param)
            name = f"{module_name}.{param_name}" if module_name else param_name
            no_decay = (
                isinstance(module, _NORM_TYPES)
                or param_name == "bias"
                or any(p.search(name) for p in patterns)
            )
            factor = encoder_lr_factor if name.startswith(_ENCODER_PREFIX) else 1.0
            groups.append(
                {
                    "params": [param],
                    "lr": base_lr * factor,
                    "weight_decay": 0.0 if no_decay else weight_decay,
                }
            )
    return reduce_param_groups(groups)


@TRAINER_REGISTRY.register()
class ICMDepthTrainer(PluginTrainer):
    """``SOLVER.ICM_DEPTH.OPTIMIZER`` (AdamW / SGD); the encoder's learning rate is scaled by
    ``SOLVER.ICM_DEPTH.ENCODER_LR_FACTOR``; no weight decay on norms, biases and the parameters
    named by ``SOLVER.ICM_DEPTH.NO_DECAY_NAMES`` (the depth clusters of both decoders)."""

    @classmethod
    def build_optimizer(cls, cfg, model):
        s = cfg.SOLVER.ICM_DEPTH
        params = optimizer_param_groups(
            model,
            base_lr=cfg.SOLVER.BASE_LR,
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
            encoder_lr_factor=s.ENCODER_LR_FACTOR,
            no_decay_patterns=list(s.NO_DECAY_NAMES),
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
