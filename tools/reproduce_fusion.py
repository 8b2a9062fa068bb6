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
``--image-size``; tiles outside the photographed area (white no-data pixels, where the masks still
draw roads) are left out (``--road-max-nodata``); the first 6 images train, the rest evaluate.
Roads use the paper's U-Net width and depth (``--road-width 16 --road-depth 4``) and train
``--road-iters`` iterations with a cosine learning-rate decay (``--road-lr-schedule``).
"""
import argparse
import json
import logging
import os

import cv2
import numpy as np
import tqdm
from detectron2.data import DatasetCatalog, MetadataCatalog
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

# Table 1 (S2: Acc, mIoU, fwIoU) and Table 2 (S2: L1, the mean over all elements, pixels and RGB
# channels, as the authors' evaluation computes it; comparable with our "L1", not "L1_rgb_sum").
PAPER = {
    "clean": (73.25, 49.20, 59.07, 0.0),
    "mean": (61.96, 25.15, 41.36, 0.7608),
    "quality": (72.15, 49.90, 57.96, 0.0372),
}
ROWS = (("clean", "Clean data"), ("mean", "Baseline (mean)"), ("quality", "Ours (quality)"))


def prepare_road_tiles(
    roads_dir: str, out_dir: str, size: int, grid: int = 10, num_train=6, max_nodata=1.0
):
    """Cuts the road images into grid x grid tiles once (each image read once); registers the
    ``overhead_fusion_aerial_roads_{train,val}`` splits.

    Massachusetts Roads images are white (255, 255, 255) outside the photographed area, while the
    road masks continue there; tiles with more than ``max_nodata`` of such pixels are left out,
    since their labels have nothing in the image to be learnt from.

    Returns:
        {"train": number of tiles, "val": number of tiles}.
    """
    pairs = pair_files(os.path.join(roads_dir, "images"), os.path.join(roads_dir, "masks"))
    fmt = LABEL_FORMATS["mass_roads"]
    counts = {"train": 0, "val": 0}
    for index, (key, image_path, mask_path) in enumerate(tqdm.tqdm(pairs, desc="road tiles")):
        split = "train" if index < num_train else "val"
        image_dir = os.path.join(out_dir, split, "images")
        mask_dir = os.path.join(out_dir, split, "masks")
        done = os.path.join(out_dir, split, f".{key}_{grid}_{max_nodata:g}.done")
        if os.path.exists(done):
            with open(done) as f:
                counts[split] += int(f.read())
            continue
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(mask_dir, exist_ok=True)
        image = cv2.imread(image_path, cv2.IMREAD_COLOR)
        mask = cv2.imread(mask_path, cv2.IMREAD_COLOR)
        if image is None or mask is None:
            logger.warning("Skipping unreadable %s", key)
            continue
        ids = decode_color_label(np.ascontiguousarray(mask[:, :, ::-1]), fmt)
        nodata = (image == 255).all(axis=2)
        kept = 0
        for row in range(grid):
            for col in range(grid):
                x0, y0, x1, y1 = tile_box(image.shape[0], image.shape[1], [row, col, grid, 0])
                if nodata[y0:y1, x0:x1].mean() > max_nodata:
                    continue
                tile = cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
                labels = cv2.resize(
                    ids[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_NEAREST
                )
                name = f"{key}_{row}_{col}.png"
                cv2.imwrite(os.path.join(image_dir, name), tile)
                colors = encode_color_label(labels, fmt)[:, :, ::-1]
                cv2.imwrite(os.path.join(mask_dir, name), np.ascontiguousarray(colors))
                kept += 1
        with open(done, "w") as f:
            f.write(str(kept))
        counts[split] += kept
    for split in ("train", "val"):
        name = f"overhead_fusion_aerial_roads_{split}"
        if name in DatasetCatalog.list():  # tiles of another grid or no-data limit
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_tiled_dataset(
            name,
            os.path.join(out_dir, split, "images"),
            os.path.join(out_dir, split, "masks"),
            "mass_roads",
        )
    return counts


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
            "MODEL.OVERHEAD_FUSION.QUALITY_BASE_WIDTH", str(args.road_width),
            "MODEL.OVERHEAD_FUSION.SEG_BASE_WIDTH", str(args.road_width),
            "MODEL.OVERHEAD_FUSION.UNET_DEPTH", str(args.road_depth),
            "SOLVER.LR_SCHEDULER_NAME", args.road_lr_schedule,
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
        "L1: mean |fused - clean| over all elements (the paper's L1); L1 RGB sum: summed over "
        "the 3 channels, averaged over pixels (3 x L1, no paper value)",
        f"{'':18s} {'Acc.':>16s} {'mIoU':>16s} {'fwIoU':>16s} {'L1':>18s} {'L1 RGB sum':>11s}",
    ]
    for key, label in ROWS:
        if key not in results:
            continue
        r, p = results[key], PAPER[key]
        l1 = 0.0 if key == "clean" else r["L1"]
        l1_sum = 0.0 if key == "clean" else r["L1_rgb_sum"]
        lines.append(
            f"{label:18s} {r['pACC']:7.2f} ({p[0]:6.2f}) {r['mIoU']:7.2f} ({p[1]:6.2f}) "
            f"{r['fwIoU']:7.2f} ({p[2]:6.2f}) {l1:8.4f} ({p[3]:6.4f}) {l1_sum:11.4f}"
        )
    if "quality" in results and "mean" in results:
        ratio = results["mean"]["L1"] / max(results["quality"]["L1"], 1e-12)
        lines.append(f"L1 baseline / ours: {ratio:.1f}x (paper S1 15.9x, S2 20.5x)")
    first = next(iter(results.values()))
    classes = [k[4:] for k in first if k.startswith("IoU-") and not k.endswith("_std")]
    for name in classes:
        ious = ", ".join(
            f"{key} {results[key][f'IoU-{name}']:.2f}" for key, _ in ROWS if key in results
        )
        lines.append(f"IoU {name}: {ious}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", default="configs/OverheadFusion/demo.yaml")
    p.add_argument("--datasets", nargs="+", default=["toy", "roads"], choices=["toy", "roads"])
    p.add_argument("--methods", nargs="+", default=["quality", "mean", "clean"])
    p.add_argument("--roads-dir", default=str(shared_data_dir() / "aerial_roads"))
    p.add_argument("--road-grid", type=int, default=20, help="tiles per side of a road image")
    p.add_argument(
        "--road-max-nodata",
        type=float,
        default=0.01,
        help="leave out road tiles with more than this fraction of white no-data pixels",
    )
    p.add_argument(
        "--road-class-weights",
        type=float,
        nargs=2,
        default=(0.5, 4.0),
        help="alpha of background and road (roads cover about 2.5%% of the kept pixels)",
    )
    p.add_argument(
        "--road-width", type=int, default=16, help="U-Net base width on the road tiles (paper: 16)"
    )
    p.add_argument(
        "--road-depth", type=int, default=4, help="U-Net depth on the road tiles (paper: 4)"
    )
    p.add_argument(
        "--road-lr-schedule",
        default="WarmupCosineLR",
        choices=["WarmupCosineLR", "WarmupMultiStepLR"],
        help="learning-rate schedule on the road tiles: cosine decay to 0, or step decay "
        "(halved at 60%% and 85%% of the iterations)",
    )
    p.add_argument("--iters", type=int, default=400, help="training iterations per toy run")
    p.add_argument("--road-iters", type=int, default=1600, help="training iterations per road run")
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
            tiles = os.path.join(
                args.output_dir,
                f"road_tiles_{args.road_grid}_{args.image_size}_{args.road_max_nodata:g}",
            )
            counts = prepare_road_tiles(
                args.roads_dir, tiles, args.image_size, args.road_grid, 6, args.road_max_nodata
            )
            logger.info("Road tiles: %d train, %d val", counts["train"], counts["val"])
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
