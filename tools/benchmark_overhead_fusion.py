#!/usr/bin/env python
"""Times OverheadFusion's parts: artifact synthesis (per sample on one CPU thread, as in a
data-loader worker), one training step of the model, the batched fusion op against a
per-sample loop, and (with ``--tiles-dir``) reading the tiles of one large image with and
without the tile cache.

    python tools/benchmark_overhead_fusion.py --device cpu --image-size 300 --views 4 \
        --batch 5 --repeats 3 --json bench.json
    python tools/benchmark_overhead_fusion.py --tiles-dir ../shared/data/aerial_roads --tile-grid 5
"""
import argparse
import json
import os
import time

import torch

from d2common.testing import plugin_cfg
from overhead_fusion.data import (
    OverheadFusionDatasetMapper,
    TileCache,
    load_tiled_dataset,
    read_tile,
)
from overhead_fusion.ops import quality_fusion, segment_ids_from_counts


def _timeit(fn, repeats, device):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def _loop_fusion(views, logits, counts):
    out, start = [], 0
    for c in counts:
        w = torch.softmax(logits[start : start + c], dim=0)
        out.append((views[start : start + c] * w).sum(0))
        start += c
    return torch.stack(out)


def time_tile_reads(tiles_dir: str, grid: int, size: int, label_format: str = "mass_roads"):
    """Seconds per tile to read every tile of the first image of ``tiles_dir`` (``images/``,
    ``masks/``): each decoding its whole source (``read_tile``), and through a fresh
    :class:`TileCache` (one decode, then cut and resized tiles)."""
    records = load_tiled_dataset(
        os.path.join(tiles_dir, "images"),
        os.path.join(tiles_dir, "masks"),
        label_format,
        grid=grid,
        full_decode=False,
    )
    first = [r for r in records if r["file_name"] == records[0]["file_name"]]
    t0 = time.perf_counter()
    for r in first:
        read_tile(r, size)
    uncached = (time.perf_counter() - t0) / len(first)
    cache = TileCache(1 << 30)
    t0 = time.perf_counter()
    for r in first:
        cache.get(r, size)
    cached = (time.perf_counter() - t0) / len(first)
    return {"tiles": len(first), "uncached_s": uncached, "cached_s": cached}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", default="configs/OverheadFusion/Base-OverheadFusion.yaml")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--image-size", type=int, default=300)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default="", help="write the numbers to this JSON file")
    p.add_argument("--tiles-dir", default="", help="images/ + masks/ of large images to tile")
    p.add_argument("--tile-grid", type=int, default=5, help="tiles per side for --tiles-dir")
    args = p.parse_args(argv)
    if args.tiles_dir:
        t = time_tile_reads(args.tiles_dir, args.tile_grid, args.image_size)
        print(
            f"tile reads ({t['tiles']} tiles of one image, {args.image_size} px): "
            f"{1000 * t['uncached_s']:.1f} ms per tile decoding the source each time, "
            f"{1000 * t['cached_s']:.1f} ms per tile through the tile cache"
        )
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    opts = [
        "MODEL.DEVICE", args.device,
        "INPUT.OVERHEAD_FUSION.IMAGE_SIZE", str(args.image_size),
        "INPUT.OVERHEAD_FUSION.NUM_VIEWS", f"({args.views}, {args.views})",
    ]  # fmt: skip
    cfg = plugin_cfg(os.path.abspath(args.config_file), opts)
    s, v, b = args.image_size, args.views, args.batch

    mapper = OverheadFusionDatasetMapper(cfg, is_train=True)
    clean = torch.rand(3, s, s)
    # Artifacts are drawn in data-loader workers, which run torch with one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    synth_cpu = _timeit(lambda: mapper.synthesize_views(clean), args.repeats, torch.device("cpu"))
    torch.set_num_threads(threads)

    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    model = build_model(cfg).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    batch = [
        {"views": torch.rand(v, 3, s, s), "image": clean, "sem_seg": torch.randint(0, 3, (s, s))}
        for _ in range(b)
    ]

    def step():
        with EventStorage(0):
            loss = sum(model(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step_time = _timeit(step, args.repeats, device)

    counts = [v] * b
    views = torch.rand(v * b, 3, s, s, device=device)
    logits = torch.randn(v * b, 1, s, s, device=device)
    ids = segment_ids_from_counts(torch.tensor(counts, device=device))
    fusion_batched = _timeit(lambda: quality_fusion(views, logits, ids, b), args.repeats, device)
    fusion_loop = _timeit(lambda: _loop_fusion(views, logits, counts), args.repeats, device)

    synth_batch = synth_cpu * b
    results = {
        "device": str(device),
        "image_size": s,
        "views": v,
        "batch": b,
        "config": args.config_file,
        "artifact_synthesis_per_sample_s": synth_cpu,
        "artifact_synthesis_per_batch_s": synth_batch,
        "train_step_s": step_time,
        "artifact_share_of_step": synth_batch / (synth_batch + step_time),
        "fusion_op_batched_s": fusion_batched,
        "fusion_op_loop_s": fusion_loop,
        "torch_threads": torch.get_num_threads(),
    }
    if args.tiles_dir:
        results.update(tile_read_uncached_s=t["uncached_s"], tile_read_cached_s=t["cached_s"])
    for key, value in results.items():
        print(f"{key:34s} {value:.4f}" if isinstance(value, float) else f"{key:34s} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
