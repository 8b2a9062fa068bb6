#!/usr/bin/env python
"""The paper's claim on a CPU budget: trains quality fusion (ours), the mean-fusion baseline and
the clean-image upper bound on the same data and budget, evaluates them with fresh artifacts and
prints the layout of the paper's Tables 1 and 2, under an all-background and a majority-class
reference row.

    python tools/reproduce_fusion.py                       # toy tiles and real road tiles
    python tools/reproduce_fusion.py --datasets toy --iters 400 --repeats 3 --json out.json
    python tools/reproduce_fusion.py --datasets roads --seeds 0 1 2
    python tools/reproduce_fusion.py --datasets roads --prepare-only   # cut the road folds only

Road tiles: Massachusetts Roads images (``images/*.png``, ``masks/*.png`` with road = 255), in
image-level folds: train on ``--road-train`` images, settings chosen on ``--road-tune`` images,
results reported on the held-out ``--road-test`` images (0-based indices of the sorted names;
by default 2-5 / 6-7 / 0-1: the earlier settings were chosen on images 6-7). Each image is cut
into ``--road-grid`` x ``--road-grid`` tiles (default 20: 75 px, close to the native resolution
at 64 px, so that the 7 px wide roads stay about 6 px wide), resized to ``--image-size``; tiles
with more than ``--road-max-nodata`` white no-data pixels are left out (the mapper gives the
white pixels left the ignore label). The road model is ``--road-config``.

Every training runs in ``<output-dir>/<dataset>/<method>/seed_<seed>/`` with a ``config.yaml``
that ``tools/evaluate_fusion.py`` and ``tools/visualize_fusion.py`` open (the road folds are in
its INPUT.OVERHEAD_FUSION.FOLDER_DATASETS), its checkpoints, and ``results.json`` once finished:
a finished run is not trained again, an interrupted one resumes from its last checkpoint
(``--no-resume``: start over). Comparisons over seeds with Welch's t-test:
``tools/run_seeds.py --study configs/OverheadFusion/studies/road_folds.yaml``.
"""
import argparse
import json
import logging
import os

import cv2
import numpy as np
import torch
import tqdm
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.logger import setup_logger

from d2common.testing import plugin_cfg, shared_data_dir
from overhead_fusion.data import (
    LABEL_FORMATS,
    decode_color_label,
    encode_color_label,
    nodata_color,
    nodata_mask,
    pair_files,
    read_tile,
    tile_box,
)
from overhead_fusion.engine import resolve_dataset, train_once
from overhead_fusion.ops import confusion_matrix, segmentation_scores

logger = logging.getLogger("overhead_fusion.reproduce")

# Table 1 (S2: Acc, mIoU, fwIoU) and Table 2 (S2: L1, the mean over all elements, pixels and RGB
# channels, as the authors' evaluation computes it; comparable with our "L1", not "L1_rgb_sum").
PAPER = {
    "clean": (73.25, 49.20, 59.07, 0.0),
    "mean": (61.96, 25.15, 41.36, 0.7608),
    "quality": (72.15, 49.90, 57.96, 0.0372),
}
ROWS = (("clean", "Clean data"), ("mean", "Baseline (mean)"), ("quality", "Ours (quality)"))
DEFAULT_FOLDS = {"train": [2, 3, 4, 5], "tune": [6, 7], "test": [0, 1]}
ROAD_PREFIX = "overhead_fusion_road_folds"


def road_folder_entries(out_dir: str, folds=DEFAULT_FOLDS):
    """INPUT.OVERHEAD_FUSION.FOLDER_DATASETS entries of the road folds cut into ``out_dir``."""
    return [
        f"{ROAD_PREFIX}_{split}:mass_roads:{os.path.join(out_dir, split, 'images')}:"
        f"{os.path.join(out_dir, split, 'masks')}"
        for split in folds
    ]


def prepare_road_tiles(
    roads_dir: str, out_dir: str, size: int, grid: int = 20, folds=None, max_nodata=1.0
):
    """Cuts the road images of every fold into grid x grid tiles once (each image read once) and
    registers ``overhead_fusion_road_folds_<fold>``.

    Massachusetts Roads images are white (255, 255, 255) outside the photographed area, while the
    road masks continue there: tiles with more than ``max_nodata`` of such pixels are left out;
    the white pixels left in the kept tiles get the ignore label in the mapper
    (INPUT.OVERHEAD_FUSION.NODATA "ignore").

    Args:
        folds: {fold: [image indices in the sorted pairs]}; default :data:`DEFAULT_FOLDS`.

    Returns:
        {fold: number of tiles}.
    """
    folds = folds or DEFAULT_FOLDS
    pairs = pair_files(os.path.join(roads_dir, "images"), os.path.join(roads_dir, "masks"))
    taken = [i for ids in folds.values() for i in ids]
    if len(set(taken)) != len(taken) or max(taken) >= len(pairs):
        raise ValueError(f"folds {folds} must be disjoint indices of the {len(pairs)} images")
    fmt = LABEL_FORMATS["mass_roads"]
    counts = {}
    for split, indices in folds.items():
        counts[split] = 0
        image_dir = os.path.join(out_dir, split, "images")
        mask_dir = os.path.join(out_dir, split, "masks")
        for index in tqdm.tqdm(indices, desc=f"road tiles, {split}"):
            key, image_path, mask_path = pairs[index]
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
                raise FileNotFoundError(f"cannot read the road image or mask of {key}")
            ids = decode_color_label(np.ascontiguousarray(mask[:, :, ::-1]), fmt)
            nodata = nodata_mask(image, (255, 255, 255))
            kept = 0
            for row in range(grid):
                for col in range(grid):
                    x0, y0, x1, y1 = tile_box(image.shape[0], image.shape[1], [row, col, grid, 0])
                    if nodata[y0:y1, x0:x1].mean() > max_nodata:
                        continue
                    tile = cv2.resize(
                        image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA
                    )
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
    for entry in road_folder_entries(out_dir, folds):
        name = entry.split(":")[0]
        if name in DatasetCatalog.list():  # tiles of another grid or no-data limit
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
    from overhead_fusion.data.builtin import register_folder_datasets

    register_folder_datasets(road_folder_entries(out_dir, folds))
    return counts


def reference_rows(cfg, train_name: str, eval_name: str):
    """Scores of two constant predictors on ``eval_name``: class 0 (background) everywhere, and
    the most frequent class of the training labels everywhere.

    Returns:
        {row label: {"pACC", "mIoU", "fwIoU"}} in percent.
    """
    c = cfg.MODEL.OVERHEAD_FUSION
    size, color = cfg.INPUT.OVERHEAD_FUSION.IMAGE_SIZE, nodata_color(cfg)

    def labels(name):
        for record in DatasetCatalog.get(resolve_dataset(cfg, name)):
            yield torch.from_numpy(read_tile(record, size, set(), color)[1]).long()

    freq = torch.zeros(c.NUM_CLASSES, dtype=torch.int64)
    for y in labels(train_name):
        freq += torch.bincount(y[y < c.NUM_CLASSES], minlength=c.NUM_CLASSES)
    majority = int(freq.argmax())
    classes = MetadataCatalog.get(train_name).get("stuff_classes", None) or list(
        range(c.NUM_CLASSES)
    )
    conf = {0: 0, majority: 0}
    for y in labels(eval_name):
        for k in conf:
            conf[k] = conf[k] + confusion_matrix(torch.full_like(y, k), y, c.NUM_CLASSES)
    rows = {}
    for k, label in ((0, "All background"), (majority, f"Majority ({classes[majority]})")):
        s = segmentation_scores(conf[k])
        rows[label] = {m: 100 * float(s[k2]) for m, k2 in _SCORES}
    return rows


_SCORES = (("pACC", "pixel_acc"), ("mIoU", "mIoU"), ("fwIoU", "fwIoU"))


def _dataset_opts(dataset, args, tiles_dir):
    if dataset != "roads":
        iters = args.iters
        steps = sorted({s for s in (int(iters * 0.6), int(iters * 0.85)) if 0 < s < iters})
        return args.config_file, [
            "INPUT.OVERHEAD_FUSION.IMAGE_SIZE", str(args.image_size),
            "INPUT.OVERHEAD_FUSION.NUM_VIEWS", f"({args.views}, {args.views})",
            "INPUT.OVERHEAD_FUSION.AREA_FRACTION", str(args.area),
            "SOLVER.MAX_ITER", str(iters),
            "SOLVER.STEPS", str(tuple(steps)),
        ]  # fmt: skip
    folds = _folds(args)
    evaluated = tuple(f"{ROAD_PREFIX}_{s}" for s in args.road_eval if s in folds)
    opts = [
        "INPUT.OVERHEAD_FUSION.IMAGE_SIZE", str(args.image_size),
        "INPUT.OVERHEAD_FUSION.FOLDER_DATASETS", str(road_folder_entries(tiles_dir, folds)),
        "DATASETS.TRAIN", f"('{ROAD_PREFIX}_train',)",
        "DATASETS.TEST", str(evaluated),
    ]  # fmt: skip
    if args.road_iters:
        iters = args.road_iters
        opts += ["SOLVER.MAX_ITER", str(iters), "SOLVER.STEPS", str((iters * 6 // 10,))]
    return args.road_config, opts


def run(method, dataset, seed, args, tiles_dir=None):
    """Trains (or resumes, or reads back) one model; returns {dataset name: results}."""
    out = os.path.join(args.output_dir, dataset, method, f"seed_{seed}")
    config, opts = _dataset_opts(dataset, args, tiles_dir)
    opts += ["MODEL.OVERHEAD_FUSION.FUSION", method, "SEED", str(seed), "OUTPUT_DIR", out]
    if args.repeats:
        opts += ["TEST.OVERHEAD_FUSION.REPEATS", str(1 if method == "clean" else args.repeats)]
    cfg = plugin_cfg(os.path.abspath(config), opts + list(args.opts))
    logger.info("%s on %s, seed %d, %d iterations", method, dataset, seed, cfg.SOLVER.MAX_ITER)
    return train_once(cfg, resume=not args.no_resume)


def _folds(args):
    return {"train": args.road_train, "tune": args.road_tune, "test": args.road_test}


def _mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), std


def summarize(per_seed):
    """{method: [results of each seed]} -> {method: {metric: mean, metric_sd: sample std over
    seeds, metric_runs: [per seed]}} (metrics without "_std" of the evaluation repeats)."""
    out = {}
    for method, runs in per_seed.items():
        out[method] = {}
        for metric in runs[0]:
            if metric.endswith("_std"):
                continue
            values = [r[metric] for r in runs]
            mean, std = _mean_std(values)
            out[method].update({metric: mean, f"{metric}_sd": std, f"{metric}_runs": values})
    return out


def format_table(title, results, references=None):
    def cell(r, key, fmt):
        text = format(r[key], fmt)
        if len(r.get(f"{key}_runs", [])) > 1:
            text += " +- " + format(r[f"{key}_sd"], fmt)
        return text

    lines = [
        f"{title} (paper, City-OSM S2, in brackets; +- sample std over seeds)",
        "L1: mean |fused - clean| over all elements (the paper's L1); L1 RGB sum: summed over "
        "the 3 channels, averaged over pixels (3 x L1, no paper value)",
        f"{'':22s} {'Acc.':>22s} {'mIoU':>22s} {'fwIoU':>22s} {'L1':>24s} {'L1 RGB sum':>11s}",
    ]
    for label, r in (references or {}).items():
        lines.append(
            f"{label:22s} {r['pACC']:22.2f} {r['mIoU']:22.2f} {r['fwIoU']:22.2f} {'-':>24s}"
        )
    for key, label in ROWS:
        if key not in results:
            continue
        r, p = results[key], PAPER[key]
        n = len(r.get("mIoU_runs", [0]))
        l1 = "0.0" if key == "clean" else cell(r, "L1", ".4f")
        l1_sum = 0.0 if key == "clean" else r["L1_rgb_sum"]
        lines.append(
            f"{label + f' (n={n})':22s} {cell(r, 'pACC', '.2f'):>14s} ({p[0]:5.2f}) "
            f"{cell(r, 'mIoU', '.2f'):>14s} ({p[1]:5.2f}) {cell(r, 'fwIoU', '.2f'):>14s} "
            f"({p[2]:5.2f}) {l1:>16s} ({p[3]:6.4f}) {l1_sum:11.4f}"
        )
    if "quality" in results and "mean" in results:
        ratio = results["mean"]["L1"] / max(results["quality"]["L1"], 1e-12)
        lines.append(f"L1 baseline / ours: {ratio:.1f}x (paper S1 15.9x, S2 20.5x)")
    first = next(iter(results.values()))
    classes = [k[4:] for k in first if k.startswith("IoU-") and not k.endswith(("_sd", "_runs"))]
    for name in classes:
        ious = ", ".join(
            f"{key} {cell(results[key], f'IoU-{name}', '.2f')}" for key, _ in ROWS if key in results
        )
        lines.append(f"IoU {name}: {ious}")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", default="configs/OverheadFusion/demo.yaml", help="toy model")
    p.add_argument(
        "--road-config", default="configs/OverheadFusion/quality_unet16_1600it_roadfolds.yaml"
    )
    p.add_argument("--datasets", nargs="+", default=["toy", "roads"], choices=["toy", "roads"])
    p.add_argument("--methods", nargs="+", default=["quality", "mean", "clean"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one training per seed")
    p.add_argument("--roads-dir", default=str(shared_data_dir() / "aerial_roads"))
    p.add_argument("--road-grid", type=int, default=20, help="tiles per side of a road image")
    p.add_argument("--road-train", type=int, nargs="+", default=DEFAULT_FOLDS["train"])
    p.add_argument("--road-tune", type=int, nargs="+", default=DEFAULT_FOLDS["tune"])
    p.add_argument("--road-test", type=int, nargs="+", default=DEFAULT_FOLDS["test"])
    p.add_argument(
        "--road-eval",
        nargs="+",
        default=["test"],
        choices=["tune", "test"],
        help="folds evaluated (the table shows the last)",
    )
    p.add_argument(
        "--road-max-nodata",
        type=float,
        default=0.01,
        help="leave out road tiles with more than this fraction of white no-data pixels",
    )
    p.add_argument("--road-iters", type=int, default=0, help="iterations (0: the road config's)")
    p.add_argument("--iters", type=int, default=400, help="training iterations per toy run")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--views", type=int, default=4, help="views (toy)")
    p.add_argument("--area", type=float, default=0.5, help="artifact area fraction per view (toy)")
    p.add_argument("--repeats", type=int, default=0, help="evaluations (0: the config's)")
    p.add_argument("--output-dir", default="output/reproduce_fusion")
    p.add_argument("--prepare-only", action="store_true", help="cut the road folds and stop")
    p.add_argument("--no-resume", action="store_true", help="train every run from scratch")
    p.add_argument("--json", default="", help="write all results to this JSON file")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logger(name="overhead_fusion")
    setup_logger(name="d2.engine.hooks")
    all_results, tables = {}, []
    for dataset in args.datasets:
        tiles = None
        if dataset == "roads":
            if not os.path.isdir(args.roads_dir):
                raise FileNotFoundError(f"--roads-dir {args.roads_dir} does not exist")
            tiles = os.path.join(
                args.output_dir,
                f"road_folds_{args.road_grid}_{args.image_size}_{args.road_max_nodata:g}",
            )
            counts = prepare_road_tiles(
                args.roads_dir,
                tiles,
                args.image_size,
                args.road_grid,
                _folds(args),
                args.road_max_nodata,
            )
            logger.info("Road tiles per fold: %s", counts)
            if args.prepare_only:
                print("\n".join(road_folder_entries(tiles, _folds(args))))
                continue
        per_seed = {m: [run(m, dataset, s, args, tiles) for s in args.seeds] for m in args.methods}
        names = list(next(iter(per_seed.values()))[0])
        config, opts = _dataset_opts(dataset, args, tiles)
        cfg = plugin_cfg(os.path.abspath(config), opts + list(args.opts))
        all_results[dataset] = {}
        for name in names:
            summary = summarize({m: [r[name] for r in runs] for m, runs in per_seed.items()})
            refs = reference_rows(cfg, cfg.DATASETS.TRAIN[0], name)
            all_results[dataset][name] = {"methods": summary, "references": refs}
            tables.append(format_table(f"{dataset}, {name}", summary, refs))
    print("\n\n".join(tables))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": all_results}, f, indent=2, default=str)
    return all_results


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
