#!/usr/bin/env python
"""Per-stage relative distance between a model's features of the low-light and the normal-light
rendering of the same toy scenes (``lowlight_nl_toy_val``): ``||f(low) - f(normal)|| /
||f(normal)||`` for res2..res5 (after their NL blocks) and the FPN levels, averaged over images.
For a model with weighted NL blocks, the same with the blocks switched off is printed too.

    python tools/lowlight_feature_distance.py \\
        --model "wNL=configs/LowLightNL/demo.yaml@/tmp/lowlight_nl_demo/model_final.pth" \\
        --model "plain=configs/LowLightNL/demo.yaml@/tmp/plain/model_final.pth" \\
        --opts-plain MODEL.BACKBONE.NAME build_resnet_fpn_backbone --json distances.json

``--model LABEL=CONFIG@WEIGHTS`` may be repeated; ``--opts-<LABEL> KEY VALUE ...`` overrides that
model's config. ``--noise paper`` renders the scenes with the paper's darkening and noise ranges
(``lowlight_nl_toy_paper_noise_val``). With ``--seeds 0 1 2`` every WEIGHTS containing ``{seed}``
is loaded once per seed and each cell is the mean +- sample std over the seeds.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "projects" / "Common"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # seed_stats


def toy_pairs(num: int, split: str = "val", noise: str = "toy"):
    """(low-light uint8 RGB, normal-light uint8 RGB) renderings of the first ``num`` toy scenes;
    ``noise``: "toy" (the mild ranges of ``lowlight_nl_toy``) or "paper"."""
    from lowlight_nl.data.builtin import TOY_SEED
    from lowlight_nl.data.toy import PAPER_SYNTHESIS_RANGES, TOY_SYNTHESIS_RANGES, render_toy_image

    ranges = {"toy": TOY_SYNTHESIS_RANGES, "paper": PAPER_SYNTHESIS_RANGES}[noise]
    for index in range(num):
        low, clean, _ = render_toy_image(TOY_SEED, split, index, ranges)
        yield low, np.rint(np.clip(clean, 0, 1) * 255).astype(np.uint8)


def load_model(config: str, weights: str, opts):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from d2common.testing import plugin_cfg

    cfg = plugin_cfg(config, list(opts) + ["MODEL.DEVICE", "cpu"])
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(weights)
    return model


def distance_table(models, num: int, noise: str = "toy") -> dict:
    """{label: {feature: distance}} (and ``label (blocks off)`` for models with blocks)."""
    from lowlight_nl.feature_distance import has_nonlocal_blocks, relative_distances
    from lowlight_nl.modeling import nonlocal_blocks_disabled

    table = {}
    for label, model in models:
        table[label] = relative_distances(model, toy_pairs(num, noise=noise))
        if has_nonlocal_blocks(model):
            with nonlocal_blocks_disabled(model):
                off = relative_distances(model, toy_pairs(num, noise=noise))
                table[f"{label} (blocks off)"] = off
    return table


def seed_summary(tables) -> dict:
    """{label: {feature: (mean, sample std)}} over the per-seed tables (std 0 for one seed)."""
    from seed_stats import mean_std

    summary = {}
    for label in tables[0]:
        summary[label] = {}
        for name in tables[0][label]:
            mean, std = mean_std([float(t[label][name]) for t in tables])
            summary[label][name] = (mean, std or 0.0)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="LABEL=CONFIG@WEIGHTS")
    parser.add_argument("--num", type=int, default=16, help="toy val scenes")
    parser.add_argument("--json", help="write the table to this JSON file")
    parser.add_argument("--noise", choices=("toy", "paper"), default="toy")
    parser.add_argument("--seeds", type=int, nargs="+", help="fill {seed} in WEIGHTS")
    from d2common.cli import parse_labelled_models

    args, specs = parse_labelled_models(parser, argv)
    from d2common.projects import import_all_projects

    import_all_projects()
    tables = []
    for seed in args.seeds or [None]:
        models = [
            (label, load_model(config, weights.format(seed=seed), opts))
            for label, config, weights, opts in specs
        ]
        tables.append(distance_table(models, args.num, args.noise))
    table = seed_summary(tables) if args.seeds else tables[0]
    names = list(next(iter(table.values())))
    print("| model | " + " | ".join(names) + " |")
    print("| --- " * (len(names) + 1) + "|")
    for label, row in table.items():
        cells = [
            f"{row[n][0]:.3f} +- {row[n][1]:.3f}" if args.seeds else f"{row[n]:.3f}" for n in names
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)


if __name__ == "__main__":
    main()
