#!/usr/bin/env python
"""The paper's claim on a CPU budget: trains quality fusion (ours), the mean-fusion baseline and
the clean-image upper bound on the same data and budget, evaluates them with fresh artifacts and
prints the layout of the paper's Tables 1 and 2.

    python tools/reproduce_fusion.py                       # toy tiles and real road tiles
    python tools/reproduce_fusion.py --datasets toy --iters 400 --repeats 3 --json out.json
    python tools/reproduce_fusion.py --datasets roads --roads-dir /path/to/aerial_roads

The road tiles are Massachusetts Roads images (``images/*.png``, ``masks/*.png`` with road = 255);
each is cut into ``--road-grid`` x ``--road-grid`` tiles (default 20: 75 px, close to the native
resolution at 64 px, so that the 7 px wide roads stay about 6 px wide), resized to
``--image-size``; the first 6 images train, the rest evaluate. Roads train ``--road-iters``
iterations (the thin roads need more steps than the toy tiles).
"""
import argparse
import json
import logging
import os

import cv2
import numpy as np
import tqdm
from detectron2.utils.logger import setup_logger

from d2common.testing import plugin_cfg, shared_data_dir
from overhead_fusion.data import (
    LABEL_FORMATS,
    decode_color_label,
    encode_color_label,
    pair_files,
    tile_box,
)
from overhead_fusion.data.builtin import register_tiled_dataset
from overhead_fusion.engine import OverheadFusionTrainer

logger = logging.getLogger("overhead_fusion.reproduce")

PAPER = {  # Table 1 (S2: Acc, mIoU, fwIoU) and Table 2 (S2: L1).
    "clean": (73.25, 49.20, 59.07, 0.0),
    "mean": (61.96, 25.15, 41.36, 0.7608),
    "quality": (72.15, 49.90, 57.96, 0.0372),
}
ROWS = (("clean", "Clean data"), ("mean", "Baseline (mean)"), ("quality", "Ours (quality)"))


def prepare_road_tiles(roads_dir: str, out_dir: str, size: int, grid: int = 10, num_train=6):
    """Cuts the road images into grid x grid tiles once (each image read once); registers the
    ``overhead_fusion_aerial_roads_{train,val}`` splits."""
    pairs = pair_files(os.path.join(roads_dir, "images"), os.path.join(roads_dir, "masks"))
    fmt = LABEL_FORMATS["mass_roads"]
    for index, (key, image_path, mask_path) in enumerate(tqdm.tqdm(pairs, desc="road tiles")):
        split = "train" if index < num_train else "val"
        image_dir = os.path.join(out_dir, split, "images")
        mask_dir = os.path.join(out_dir, split, "masks")
        if os.path.exists(os.path.join(mask_dir, f"{key}_{grid - 1}_{grid - 1}.png")):
            continue
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(mask_dir, exist_ok=True)
        image = cv2.imread(image_path, cv2.IMREAD_COLOR)
        mask = cv2.imread(mask_path, cv2.IMREAD_COLOR)
        if image is None or mask is None:
            logger.warning("Skipping unreadable %s", key)
            continue
        ids = decode_color_label(np.ascontiguousarray(mask[:, :, ::-1]), fmt)
        for row in range(grid):
            for col in range(grid):
                x0, y0, x1, y1 = tile_box(image.shape[0], image.shape[1], [row, col, grid, 0])
                tile = cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
                labels = cv2.resize(
                    ids[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_NEAREST
                )
                name = f"{key}_{row}_{col}.png"
                cv2.imwrite(os.path.join(image_dir, name), tile)
                colors = encode_color_label(labels, fmt)[:, :, ::-1]
                cv2.imwrite(os.path.join(mask_dir, name), np.ascontiguousarray(colors))
    for split in ("train", "val"):
        register_tiled_dataset(
            f"overhead_fusion_aerial_roads_{split}",
            os.path.join(out_dir, split, "images"),
            os.path.join(out_dir, split, "masks"),
            "mass_roads",
        )


def run(method, dataset, args):
    out = os.path.join(args.output_dir, dataset, method)
    iters = args.road_iters if dataset == "roads" else args.iters
    steps = sorted({s for s in (int(iters * 0.6), int(iters * 0.85)) if 0 < s < iters})
    opts = [
        "MODEL.OVERHEAD_FUSION.FUSION", method,
        "INPUT.OVERHEAD_FUSION.IMAGE_SIZE", str(args.image_size),
        "INPUT.OVERHEAD_FUSION.NUM_VIEWS", f"({args.views}, {args.views})",
        "INPUT.OVERHEAD_FUSION.AREA_FRACTION", str(args.area),
        "SOLVER.MAX_ITER", str(iters),
        "SOLVER.STEPS", str(tuple(steps)),
        "TEST.OVERHEAD_FUSION.REPEATS", str(1 if method == "clean" else args.repeats),
        "OUTPUT_DIR", out,
    ]  # fmt: skip
    if dataset == "roads":
        opts += [
            "DATASETS.TRAIN", "('overhead_fusion_aerial_roads_train',)",
            "DATASETS.TEST", "('overhead_fusion_aerial_roads_val',)",
            "MODEL.OVERHEAD_FUSION.NUM_CLASSES", "2",
            "MODEL.OVERHEAD_FUSION.CLASS_WEIGHTS", str(list(args.road_class_weights)),
        ]  # fmt: skip
    cfg = plugin_cfg(os.path.abspath(args.config_file), opts + list(args.opts))
    logger.info("Training %s on %s for %d iterations", method, dataset, iters)
    trainer = OverheadFusionTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    # The evaluation hook has tested the final model (TEST.OVERHEAD_FUSION.REPEATS times).
    return trainer._last_eval_results["fusion"]


def format_table(dataset, results, repeats):
    lines = [
        f"{dataset}: {repeats} evaluation(s) with fresh artifacts; (paper, City-OSM S2)",
        f"{'':18s} {'Acc.':>16s} {'mIoU':>16s} {'fwIoU':>16s} {'L1-Error':>18s}",
    ]
    for key, label in ROWS:
        if key not in results:
            continue
        r, p = results[key], PAPER[key]
        l1 = 0.0 if key == "clean" else r["L1"]
        lines.append(
            f"{label:18s} {r['pACC']:7.2f} ({p[0]:6.2f}) {r['mIoU']:7.2f} ({p[1]:6.2f}) "
            f"{r['fwIoU']:7.2f} ({p[2]:6.2f}) {l1:8.4f} ({p[3]:6.4f})"
        )
    if "quality" in results and "mean" in results:
        ratio = results["mean"]["L1"] / max(results["quality"]["L1"], 1e-12)
        lines.append(f"L1 baseline / ours: {ratio:.1f}x (paper S1 15.9x, S2 20.5x)")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", default="configs/OverheadFusion/demo.yaml")
    p.add_argument("--datasets", nargs="+", default=["toy", "roads"], choices=["toy", "roads"])
    p.add_argument("--methods", nargs="+", default=["quality", "mean", "clean"])
    p.add_argument("--roads-dir", default=str(shared_data_dir() / "aerial_roads"))
    p.add_argument("--road-grid", type=int, default=20, help="tiles per side of a road image")
    p.add_argument(
        "--road-class-weights",
        type=float,
        nargs=2,
        default=(0.5, 16.0),
        help="alpha of background and road (roads cover about 3%% of the pixels)",
    )
    p.add_argument("--iters", type=int, default=400, help="training iterations per toy run")
    p.add_argument("--road-iters", type=int, default=800, help="training iterations per road run")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--area", type=float, default=0.5, help="artifact area fraction per view")
    p.add_argument("--repeats", type=int, default=3, help="evaluations with fresh artifacts")
    p.add_argument("--output-dir", default="output/reproduce_fusion")
    p.add_argument("--json", default="", help="write all results to this JSON file")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = p.parse_args(argv)
    setup_logger(name="overhead_fusion")
    setup_logger(name="d2.engine.hooks")

    all_results = {}
    for dataset in args.datasets:
        if dataset == "roads":
            if not os.path.isdir(args.roads_dir):
                raise FileNotFoundError(f"--roads-dir {args.roads_dir} does not exist")
            tiles = os.path.join(args.output_dir, f"road_tiles_{args.road_grid}_{args.image_size}")
            prepare_road_tiles(args.roads_dir, tiles, args.image_size, args.road_grid)
        all_results[dataset] = {m: run(m, dataset, args) for m in args.methods}
    tables = [format_table(d, r, args.repeats) for d, r in all_results.items()]
    print("\n\n".join(tables))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": all_results}, f, indent=2, default=str)
    return all_results


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
