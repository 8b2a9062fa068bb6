#!/usr/bin/env python
"""Measures the balance of eq. (7): each loss term's magnitude and gradient share.

For a config (default: Table V's ResNet-50 model, D = 256, N = 32, no pre-trained weights), on
procedural road scenes rendered at the paper's KITTI resolution (352 x 1216; exact depth,
vehicles as instances), at initialisation and after training steps with the config's loss:

- the value of SI_log and of each L_ICM_l, unweighted, with both normalisers of eq. (6)
  (``matched``: mean over the matched pairs; ``clusters``: sum / N);
- the gradient norm of each unweighted term over all trainable parameters;
- with the weights of the config (or ``--icm-weights``), each term's share of the summed
  weighted gradient norms, for each normaliser.

Prints a markdown table and writes JSON (``--json``) and markdown (``--markdown``).

    python tools/icm_loss_balance.py --steps 0 10 --json balance.json --markdown balance.md
"""
import argparse
import json
import platform
import sys
import time
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from d2common.data import seeded_rng
from d2common.testing import plugin_cfg
from icm_depth.data.formats import PANOPTIC_DIVISOR
from icm_depth.data.toy import render_scene
from icm_depth.engine import ICMDepthTrainer
from icm_depth.ops import NORMALIZERS, icm_loss, silog_loss

DEFAULT_CONFIG = "configs/ICMDepth/tableV_III_icm_R50_40k_cityscapes_dvps.yaml"
SIZE = (352, 1216)


def render_batch(seed: int, batch: int, size=SIZE, image_format: str = "RGB") -> List[Dict]:
    """``batch`` mapped samples (image, depth, instance_ids) of procedural road scenes."""
    samples = []
    for k in range(batch):
        image, depth, panoptic = render_scene(seeded_rng(seed, "icm_balance", k), size)
        if image_format == "BGR":
            image = image[:, :, ::-1]
        things = panoptic >= PANOPTIC_DIVISOR
        values = np.unique(panoptic[things])
        ids = np.zeros(panoptic.shape, np.int64)
        ids[things] = np.searchsorted(values, panoptic[things]) + 1
        samples.append(
            {
                "image": torch.as_tensor(image.transpose(2, 0, 1).copy()).float(),
                "depth": torch.as_tensor(depth),
                "instance_ids": torch.as_tensor(ids),
            }
        )
    return samples


def loss_terms(model, batch, levels: Sequence[int]) -> Dict[str, torch.Tensor]:
    """Unweighted SI_log and L_ICM_l under both normalisers, from one forward pass."""
    seen = {}
    handle = model.decoder.register_forward_hook(
        lambda m, i, o: seen.update(sizes=[tuple(f.shape[-2:]) for f in i[0]], out=o)
    )
    try:
        with EventStorage(0):
            model(batch)
    finally:
        handle.remove()
    depth, attns = seen["out"]
    sizes = seen["sizes"]
    height, width = batch[0]["image"].shape[-2:]
    depth = F.interpolate(depth, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    gt = torch.stack([x["depth"].to(depth.device) for x in batch])
    ids = torch.stack([x["instance_ids"].to(depth.device) for x in batch])
    terms = {"silog": silog_loss(depth, gt, gt > 0, model.variance_focus)}
    chosen = [lvl - 1 for lvl in levels]
    for normalizer in NORMALIZERS:
        values = icm_loss(
            [attns[i] for i in chosen],
            [sizes[i] for i in chosen],
            gt,
            ids,
            model.fuzziness,
            normalizer,
        )
        for lvl, value in zip(levels, values):
            terms[f"icm_f{lvl}/{normalizer}"] = value
    return terms


def measure(model, batch, levels, weights: Dict[str, float]) -> Dict:
    """Values, gradient norms and weighted gradient shares of every term."""
    params = [p for p in model.parameters() if p.requires_grad]
    terms = loss_terms(model, batch, levels)
    out = {"terms": {}}
    for name, value in terms.items():
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None))
        out["terms"][name] = {"value": float(value), "grad_norm": float(norm)}
    for normalizer in NORMALIZERS:
        names = ["silog"] + [f"icm_f{lvl}/{normalizer}" for lvl in levels]
        weighted = {n: weights[n.split("/")[0]] * out["terms"][n]["grad_norm"] for n in names}
        total = sum(weighted.values()) or 1.0
        out[f"grad_share/{normalizer}"] = {n.split("/")[0]: v / total for n, v in weighted.items()}
        magnitudes = {n: weights[n.split("/")[0]] * out["terms"][n]["value"] for n in names}
        total = sum(magnitudes.values()) or 1.0
        out[f"value_share/{normalizer}"] = {
            n.split("/")[0]: v / total for n, v in magnitudes.items()
        }
    return out


def markdown(report: Dict) -> str:
    levels = report["icm_levels"]
    lines = [
        f"`{report['config']}`, {report['size'][0]} x {report['size'][1]}, batch "
        f"{report['batch']}, mean {report['instances_per_image']:.1f} instances per image; "
        f"weights: SI_log {report['weights']['silog']:g}, each ICM term "
        f"{report['weights'][f'icm_f{levels[0]}']:g}.",
        "",
        "| step | normaliser | SI_log | "
        + " | ".join(f"ICM F{lvl}" for lvl in levels)
        + " | grad share SI_log | "
        + " | ".join(f"grad share ICM F{lvl}" for lvl in levels)
        + " |",
        "| --- " * (3 + 2 * len(levels) + 1) + "|",
    ]
    for point in report["measurements"]:
        for normalizer in NORMALIZERS:
            t = point["terms"]
            share = point[f"grad_share/{normalizer}"]
            values = [f"{t['silog']['value']:.3g}"] + [
                f"{t[f'icm_f{lvl}/{normalizer}']['value']:.3g}" for lvl in levels
            ]
            shares = [f"{100 * share['silog']:.0f}%"] + [
                f"{100 * share[f'icm_f{lvl}']:.0f}%" for lvl in levels
            ]
            lines.append(
                f"| {point['step']} | {normalizer} | " + " | ".join(values + shares) + " |"
            )
    lines.append("")
    lines.append(
        "Values unweighted; gradient shares of the weighted terms (norm of each term's gradient "
        "over all parameters, times its weight, over the sum)."
    )
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", default=DEFAULT_CONFIG, help="model and loss config")
    p.add_argument("--size", type=int, nargs=2, default=list(SIZE), help="input H W")
    p.add_argument("--batch", type=int, default=2, help="images per step and per measurement")
    p.add_argument(
        "--steps", type=int, nargs="+", default=[0, 10], help="training steps to measure after"
    )
    p.add_argument(
        "--icm-weight", type=float, help="weight of each ICM term for the shares (default: cfg)"
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--markdown", help="write the markdown table here")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = plugin_cfg(
        args.config_file, ["MODEL.WEIGHTS", "", "MODEL.DEVICE", args.device] + args.opts
    )
    torch.manual_seed(cfg.SEED if cfg.SEED >= 0 else 0)
    model = build_model(cfg)
    model.train()
    optimizer = ICMDepthTrainer.build_optimizer(cfg, model)
    loss_cfg = cfg.MODEL.ICM_DEPTH.LOSS
    levels = list(loss_cfg.ICM_LEVELS)
    icm_weight = loss_cfg.ICM_WEIGHT if args.icm_weight is None else args.icm_weight
    weights = {"silog": loss_cfg.SILOG_WEIGHT, **{f"icm_f{lvl}": icm_weight for lvl in levels}}
    size = tuple(args.size)
    probe = render_batch(0, args.batch, size, cfg.INPUT.FORMAT)
    report = {
        "config": args.config_file,
        "opts": args.opts,
        "size": list(size),
        "batch": args.batch,
        "icm_levels": levels,
        "weights": weights,
        "trained_with": {"icm_weight": loss_cfg.ICM_WEIGHT, "normalizer": model.icm_normalizer},
        "instances_per_image": float(np.mean([int(x["instance_ids"].max()) for x in probe])),
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "measurements": [],
    }
    step, started = 0, time.time()
    for target in sorted(set(args.steps)):
        while step < target:
            batch = render_batch(1 + step, args.batch, size, cfg.INPUT.FORMAT)
            with EventStorage(step):
                losses = model(batch)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
            step += 1
        point = measure(model, probe, levels, weights)
        point["step"] = step
        report["measurements"].append(point)
        report["seconds"] = time.time() - started
        print(f"step {step}: measured ({report['seconds']:.0f} s)", file=sys.stderr)
        _write(report, args)  # after every measurement: a long run can be stopped
    print(markdown(report))
    return report


def _write(report: Dict, args) -> None:
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(report) + "\n")


if __name__ == "__main__":
    main()
