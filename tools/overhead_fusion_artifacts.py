#!/usr/bin/env python
"""Gallery and statistics of OverheadFusion's synthetic artifacts, per synthesis mode and area.

    python tools/overhead_fusion_artifacts.py --output output/of_artifacts
    python tools/overhead_fusion_artifacts.py --modes authors --areas 0.5 --num 400 --size 128

For every mode and area: N missing-data masks and N cloud alpha maps are drawn; printed (and
written to ``stats.json``): the number of distinct missing-data masks, the lost fraction (mean,
min, max), the mean cloud alpha, the fraction of pixels under a cloud with alpha > 0.5, and the
fraction of fringe-noise pixels below 0.5. ``coverage_<mode>.png`` holds histograms of the
per-draw coverage; ``gallery_<mode>.png`` shows views of one tile (``--image``, default a
procedural tile) with a cloud (top row of each area) and with missing data (bottom row).
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "projects", "OverheadFusion"))
from overhead_fusion.ops import (  # noqa: E402
    ARTIFACT_CLOUD,
    ARTIFACT_OCCLUSION,
    SYNTHESIS_MODES,
    apply_artifacts,
    artifact_areas,
    cloud_alpha_masks,
    cloud_fringe_noise,
    fractal_noise,
    occlusion_masks,
)

REFERENCE_SIZE = 300


def draw_statistics(mode: str, area: float, num: int, size: int, seed: int = 0) -> dict:
    """Coverage statistics of ``num`` draws of each artifact kind at ``size`` px."""
    gen = torch.Generator().manual_seed(seed)
    nominal = torch.full((num,), area)
    lost = occlusion_masks(artifact_areas(nominal, mode, gen), size, size, gen, mode)
    sigma = 5.0 * size / REFERENCE_SIZE
    chunks = [
        cloud_alpha_masks(artifact_areas(nominal[:64], mode, gen), size, size, sigma, gen)
        for _ in range(0, num, 64)
    ]
    alpha = torch.cat(chunks)[:num]
    fringe = cloud_fringe_noise(min(num, 64), size, size, gen)
    lost_fraction = lost.mean(dim=(1, 2, 3))
    distinct = len({m.to(torch.uint8).numpy().tobytes() for m in lost})
    return {
        "mode": mode,
        "area": area,
        "draws": num,
        "size": size,
        "distinct_occlusion_masks": distinct,
        "occlusion_lost_mean": float(lost_fraction.mean()),
        "occlusion_lost_min": float(lost_fraction.min()),
        "occlusion_lost_max": float(lost_fraction.max()),
        "cloud_alpha_mean": float(alpha.mean()),
        "cloud_alpha_over_half": float((alpha > 0.5).float().mean()),
        "fringe_below_half": float((fringe < 0.5).float().mean()),
        "_lost": lost_fraction.numpy().tolist(),
        "_alpha": alpha.mean(dim=(1, 2, 3)).numpy().tolist(),
    }


def _tile(path: str, size: int) -> torch.Tensor:
    if path:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"--image {path} cannot be read")
        side = min(image.shape[:2])
        image = cv2.resize(image[:side, :side, ::-1], (size, size), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255
    gen = torch.Generator().manual_seed(1)
    base = fractal_noise(3, size, size, 3, 4, 0.5, gen)
    return (0.35 + 0.4 * base).clamp(0, 1)


def gallery(mode: str, areas, tile: torch.Tensor, columns: int = 6, seed: int = 0) -> np.ndarray:
    """(rows * S, columns * S, 3) uint8: per area a row of cloudy and a row of occluded views."""
    gen = torch.Generator().manual_seed(seed)
    size = tile.shape[-1]
    rows = []
    for area in areas:
        for kind in (ARTIFACT_CLOUD, ARTIFACT_OCCLUSION):
            images = tile.unsqueeze(0).expand(columns, -1, -1, -1)
            kinds = torch.full((columns,), kind)
            views, _ = apply_artifacts(
                images,
                kinds,
                torch.full((columns,), area),
                blur_sigma=5.0 * size / REFERENCE_SIZE,
                generator=gen,
                mode=mode,
            )
            rows.append(torch.cat(list(views), dim=2))
    grid = torch.cat(rows, dim=1).permute(1, 2, 0).clamp(0, 1).numpy()
    return (grid * 255).round().astype(np.uint8)


def histogram_figure(stats, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for s in stats:
        axes[0].hist(s["_lost"], bins=40, range=(0, 1), alpha=0.5, label=f"area {s['area']:g}")
        axes[1].hist(s["_alpha"], bins=40, range=(0, 1), alpha=0.5, label=f"area {s['area']:g}")
    axes[0].set_title(f"{stats[0]['mode']}: missing data, lost fraction per draw")
    axes[1].set_title(f"{stats[0]['mode']}: cloud, mean alpha per draw")
    for ax in axes:
        ax.legend()
        ax.set_xlabel("fraction of the image")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--modes", nargs="+", default=list(SYNTHESIS_MODES), choices=SYNTHESIS_MODES)
    p.add_argument("--areas", nargs="+", type=float, default=[0.25, 0.5, 0.6])
    p.add_argument("--num", type=int, default=400, help="draws per mode and area")
    p.add_argument("--size", type=int, default=128, help="image side of the drawn masks")
    p.add_argument("--gallery-size", type=int, default=96)
    p.add_argument("--image", default="", help="tile for the gallery (default: procedural)")
    p.add_argument("--output", default="output/overhead_fusion_artifacts")
    args = p.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    tile = _tile(args.image, args.gallery_size)
    results = []
    header = f"{'mode':8s} {'area':>5s} {'distinct':>9s} {'lost mean [min, max]':>23s} "
    header += f"{'alpha mean':>10s} {'alpha>0.5':>9s} {'fringe<0.5':>10s}"
    print(f"{args.num} draws at {args.size} px\n{header}")
    for mode in args.modes:
        stats = [draw_statistics(mode, a, args.num, args.size) for a in args.areas]
        for s in stats:
            print(
                f"{mode:8s} {s['area']:5.2f} {s['distinct_occlusion_masks']:5d}/{s['draws']:<3d} "
                f"{s['occlusion_lost_mean']:8.3f} [{s['occlusion_lost_min']:.3f}, "
                f"{s['occlusion_lost_max']:.3f}] {s['cloud_alpha_mean']:10.3f} "
                f"{s['cloud_alpha_over_half']:9.3f} {s['fringe_below_half']:10.3f}"
            )
        histogram_figure(stats, os.path.join(args.output, f"coverage_{mode}.png"))
        image = gallery(mode, args.areas, tile)
        cv2.imwrite(os.path.join(args.output, f"gallery_{mode}.png"), image[:, :, ::-1])
        results += [{k: v for k, v in s.items() if not k.startswith("_")} for s in stats]
    with open(os.path.join(args.output, "stats.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
