#!/usr/bin/env python
"""One picture of several trained FlashAmbient models (e.g. Table 2's conditions) on the same flash
photos: one row per photo, ``flash | <model 1> | <model 2> | ... | ambient``, with each output's
PSNR against the ambient image in its title, plus the per-photo metrics as a table and JSON.

    python tools/flash_conditions_grid.py --input ../shared/data/faid_samples \\
        --model "R=configs/FlashAmbient/demo_table2.yaml@<R's run>/seed_{seed}/model_final.pth" \\
        --opts-R MODEL.FLASH_AMBIENT.DISCRIMINATOR.NAME "" \\
        --model "RM_AM=configs/FlashAmbient/demo_table2.yaml@<run>/seed_{seed}/model_final.pth" \\
        --seed 0 --output output/flash_ambient_conditions.png

``--model LABEL=CONFIG@WEIGHTS`` may be repeated; ``{seed}`` in WEIGHTS takes ``--seed``;
``--opts-<LABEL> KEY VALUE ...`` overrides that model's config. Every flash photo must have its
``*_ambient.*`` pair of the same size (FAID naming): a photo without one stops the tool with its
name, since the picture compares against it. ``--scale config`` (default) runs each model at its
config's training scale and resizes the output back; ``native`` at the photo's resolution.
"""
import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

logger = logging.getLogger("flash_conditions_grid")


def parse_models(argv):
    """(args, [(label, config, weights, opts)]) from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="LABEL=CONFIG@WEIGHTS")
    parser.add_argument("--input", required=True, help="folder of FAID-named flash/ambient pairs")
    parser.add_argument("--output", required=True, help="PNG of the grid (JSON next to it)")
    parser.add_argument("--seed", type=int, default=0, help="fills {seed} in WEIGHTS")
    parser.add_argument("--scale", choices=("native", "config"), default="config")
    parser.add_argument("--height", type=int, default=240, help="panel side in pixels")
    from d2common.cli import parse_labelled_models

    args, specs = parse_labelled_models(parser, argv)
    return args, [(label, c, w.format(seed=args.seed), opts) for label, c, w, opts in specs]


def load_model(config, weights, opts):
    """(model in eval mode, training RESIZE) of one checkpoint; a missing file stops the tool."""
    from detectron2.checkpoint import DetectionCheckpointer

    from d2common.engine import trainer_class
    from d2common.testing import plugin_cfg

    if not os.path.isfile(weights):
        sys.exit(f"error: checkpoint {weights} not found")
    cfg = plugin_cfg(config, list(opts) + ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", weights])
    model = trainer_class(cfg).build_model(cfg)
    DetectionCheckpointer(model).load(weights)
    return model.eval(), tuple(cfg.INPUT.FLASH_AMBIENT.RESIZE)


def read_pairs(folder):
    """[(name, flash RGB, ambient RGB)]; a photo without a same-size ambient stops the tool."""
    from flash_to_ambient import find_inputs

    from d2common.data.validation import read_image_checked
    from flash_ambient.data import pair_name

    pairs = []
    for flash_path, ambient_path in find_inputs(folder):
        if ambient_path is None:
            sys.exit(f"error: {flash_path} has no *_ambient image to compare with")
        flash = read_image_checked(flash_path, format="RGB")
        ambient = read_image_checked(ambient_path, format="RGB")
        if ambient.shape != flash.shape:
            sys.exit(
                f"error: {ambient_path} is {ambient.shape[:2]}, {flash_path} {flash.shape[:2]}"
            )
        pairs.append((pair_name(flash_path), flash, ambient))
    if not pairs:
        sys.exit(f"error: no flash/ambient pairs in {folder}")
    return pairs


def fit_square(image: np.ndarray, side: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (side, side, 3): longer side scaled to ``side``, white padding, so
    that portrait and landscape photos share one grid."""
    import cv2

    h, w = image.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    out = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - size[1]) // 2, (side - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = resized
    return out


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of two (H, W, 3) uint8 images."""
    mse = np.mean((prediction.astype(np.float64) - target.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def main(argv=None):
    args, specs = parse_models(argv)
    logging.basicConfig(level=logging.INFO)
    from flash_to_ambient import translate

    from d2common.projects import import_all_projects
    from d2common.visualization import panel_grid, save_rgb

    import_all_projects()
    pairs = read_pairs(args.input)
    models = [(label, *load_model(c, w, o)) for label, c, w, o in specs]
    rows, table = [], {}
    with torch.no_grad():
        for name, flash, ambient in pairs:
            panels = [(f"{name} flash {psnr(flash, ambient):.1f} dB", flash)]
            table[name] = {"flash": psnr(flash, ambient)}
            for label, model, resize in models:
                output = translate(model, flash, args.scale, resize, 0, 32)
                table[name][label] = psnr(output, ambient)
                panels.append((f"{label} {table[name][label]:.1f} dB", output))
            panels.append(("ambient", ambient))
            panels = [(title, fit_square(image, args.height)) for title, image in panels]
            rows.append(panel_grid(panels, columns=len(panels), height=args.height))
    save_rgb(args.output, np.concatenate(rows, axis=0))
    labels = ["flash"] + [label for label, _, _ in models]
    print("| pair | " + " | ".join(f"{label} PSNR" for label in labels) + " |")
    print("| --- " * (len(labels) + 1) + "|")
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[label]:.2f}" for label in labels) + " |")
    with open(os.path.splitext(args.output)[0] + ".json", "w") as f:
        json.dump({"seed": args.seed, "scale": args.scale, "psnr": table}, f, indent=1)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
