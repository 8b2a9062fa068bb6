#!/usr/bin/env python
"""Gradients reaching the weighted non-local blocks of a LowLightNL model on one training batch.

Builds the model of a config at its initialisation (``SEED``), takes the first batch of its
training loader and prints, per block, ``dL/dw``, the norm of ``dL/dgamma`` and of the gradient
of W_z's conv (``L``: the sum of the training losses). A block whose three numbers are all ~0
cannot learn. Compare initialisations through the config, e.g.

    python tools/lowlight_nl_block_gradients.py --config-file configs/LowLightNL/demo.yaml
    python tools/lowlight_nl_block_gradients.py --config-file configs/LowLightNL/demo.yaml \\
        MODEL.LOWLIGHT_NL.NORM_GAMMA_INIT 0.0
    python tools/lowlight_nl_block_gradients.py --config-file configs/LowLightNL/demo.yaml \\
        MODEL.RESNETS.NORM FrozenBN MODEL.FPN.NORM ""
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "projects" / "Common"))


def block_gradients(cfg) -> dict:
    """{stage: {"dL/dw", "|dL/dgamma|", "|dL/dW_z|"}} on the first training batch of ``cfg``."""
    from detectron2.utils.events import EventStorage

    from d2common.engine import trainer_class
    from lowlight_nl.liveness import stage_of
    from lowlight_nl.modeling import nonlocal_blocks_of

    if cfg.SEED >= 0:
        torch.manual_seed(cfg.SEED)
    trainer_cls = trainer_class(cfg)
    model = trainer_cls.build_model(cfg).train()
    batch = next(iter(trainer_cls.build_train_loader(cfg)))
    with EventStorage(0):
        losses = model(batch)
    sum(losses.values()).backward()
    report = {}
    for name, block in nonlocal_blocks_of(model):
        w = block.blend_weight
        gamma = getattr(block.out_norm, "weight", None)
        report[stage_of(name)] = {
            "dL/dw": float(w.grad) if w.grad is not None else 0.0,
            "|dL/dgamma|": float(gamma.grad.norm()) if gamma is not None else 0.0,
            "|dL/dW_z|": float(block.out_conv.weight.grad.norm()),
        }
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, help="LowLightNL config with NL blocks")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)

    from d2common.testing import plugin_cfg

    cfg = plugin_cfg(args.config_file, ["DATALOADER.NUM_WORKERS", 0] + args.opts)
    if cfg.SEED < 0:
        cfg.SEED = 0
    report = block_gradients(cfg)
    print(json.dumps(report, indent=1))
    for stage, grads in report.items():
        print(f"{stage}: " + ", ".join(f"{k} = {v:.3g}" for k, v in grads.items()))


if __name__ == "__main__":
    main()
