#!/usr/bin/env python
"""Forward+backward time and peak memory of WeightedNonLocal2d against a naive N x N version.

    python tools/benchmark_nonlocal.py --json output/benchmark_nonlocal.json
    python tools/benchmark_nonlocal.py --stages res3 res4 --forms embedded_gaussian --device cpu

Shapes: the ResNet stages of an 800x1344 input (res2 200x336 C=256 ... res5 25x42 C=2048), with
the paper's inner widths (C // 4 after res2, C // 2 elsewhere). The naive run is skipped when
its affinity matrices would exceed ``--naive-cap-gb``; their size is printed instead.
Peak memory: the process's peak RSS above the start (CPU, reset through /proc/self/clear_refs)
or ``torch.cuda.max_memory_allocated`` above the start (CUDA).
``--dtypes fp32 bf16`` also runs every block under bf16 autocast; ``--sdpa`` times bare
``torch.nn.functional.scaled_dot_product_attention`` on the block's own query / key / value
shapes (B x N x C_theta, B x M x C_theta, B x M x C'), the floor the softmax forms aim for.

``--train-step CONFIG`` also times training steps of a wNL Mask R-CNN config against the same
config with every NL block removed (needs detectron2); ``--train-opts`` overrides its keys, e.g.

    python tools/benchmark_nonlocal.py --skip-blocks --device cpu \
        --train-step configs/LowLightNL/wnl-eg_R50_FPN_10ep_coco_lowlight.yaml \
        --train-opts DATASETS.TRAIN "('lowlight_nl_toy_train',)" MODEL.WEIGHTS ""
"""
import argparse
import contextlib
import gc
import json
import os
import time

import torch

from lowlight_nl.ops import ATTENTION_BACKENDS, NONLOCAL_MODES, WeightedNonLocal2d

STAGES = {  # name: (channels, height, width, reduction) at an 800x1344 input
    "res2": (256, 200, 336, 4),
    "res3": (512, 100, 168, 2),
    "res4": (1024, 50, 84, 2),
    "res5": (2048, 25, 42, 2),
}


def naive_forward(block: WeightedNonLocal2d, x: torch.Tensor) -> torch.Tensor:
    """The block with the N x N affinity matrix materialised (Wang et al.'s formulation)."""
    b, _, h, w = x.shape
    flat = lambda t: t.flatten(2).transpose(1, 2)  # noqa: E731
    g = flat(block.pool(block.g(x)))
    if block.mode == "gaussian":
        theta, phi = flat(x), flat(block.pool(x))
    else:
        theta, phi = flat(block.theta(x)), flat(block.pool(block.phi(x)))
    m = phi.shape[1]
    if block.mode == "concatenation":
        e = theta.shape[-1]
        weight = block.concat_project.weight.flatten()
        u = theta @ weight[:e] + block.concat_project.bias[0]
        f = torch.relu(u.unsqueeze(2) + (phi @ weight[e:]).unsqueeze(1)) / m
    else:
        f = theta @ phi.transpose(1, 2)
        f = f / m if block.mode == "dot_product" else torch.softmax(f, dim=-1)
    y = (f @ g).transpose(1, 2).reshape(b, -1, h, w)
    return block.blend_weight * block.out_norm(block.out_conv(y)) + (1 - block.blend_weight) * x


class PeakMemory:
    """Peak memory above the current level, in bytes, on CPU (RSS) or CUDA (allocator)."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self):
        gc.collect()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self.start = _proc_status_kb("VmRSS") * 1024
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self.peak = _proc_status_kb("VmHWM") * 1024 - self.start


def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def sdpa_inputs(block: WeightedNonLocal2d, x: torch.Tensor):
    """Random query (B, N, C_theta), key (B, M, C_theta), value (B, M, C') of the block's shapes."""
    b, c, h, w = x.shape
    n = h * w
    m = (h // 2) * (w // 2) if block.sub_sample else n
    width = c if block.mode == "gaussian" else block.inner_channels
    g = torch.Generator(device=x.device).manual_seed(0)
    make = lambda rows, cols: torch.randn(b, rows, cols, device=x.device, generator=g)  # noqa: E731
    return make(n, width), make(m, width), make(m, block.inner_channels)


def sdpa_forward(block: WeightedNonLocal2d, x: torch.Tensor) -> torch.Tensor:
    """Bare scaled_dot_product_attention on the block's shapes; ``x`` only carries the gradient."""
    query, key, value = block._sdpa_inputs
    query = query + 0 * x.flatten()[0]  # joins the graph, so backward runs through the kernel
    # (B, 1, N, E): the flash / memory-efficient kernels take 4-D inputs only (3-D ones run the
    # math backend, which materialises the N x M matrix) and one head width for q, k and v.
    e, ev = query.shape[-1], value.shape[-1]
    if ev < e:
        value = torch.nn.functional.pad(value, (0, e - ev))
    query, key, value = (t.unsqueeze(1) for t in (query, key, value))
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, scale=1.0)
    return out.squeeze(1)[..., :ev]


def softmax_block_flops(block: WeightedNonLocal2d, shape) -> dict:
    """Forward FLOPs (a multiply-add counts 2) of a softmax-form block on ``shape`` (B, C, H, W):
    its 1x1 projections (theta, phi, g and W_z; the Gaussian form has only g and W_z) and its
    attention (the two N x M products). Bare SDPA on the same shapes does only the attention,
    so ``floor_over_sdpa`` = all / attention is the lowest block / SDPA time ratio that equal
    efficiency allows (backward multiplies both by about the same factor)."""
    b, c, h, w = shape
    n = h * w
    m = (h // 2) * (w // 2) if block.sub_sample else n
    inner = block.inner_channels
    # Every 1x1 convolution runs on all N positions (phi and g before any pooling).
    if block.mode == "gaussian":
        projections = 2 * (2 * c * inner * n)  # g and W_z; x itself is query and key
        attention = 2 * n * m * c + 2 * n * m * inner
    else:
        projections = 4 * (2 * c * inner * n)  # theta, phi, g and W_z
        attention = 2 * (2 * n * m * inner)
    projections, attention = b * projections, b * attention
    return {
        "projection_gflop": projections / 1e9,
        "attention_gflop": attention / 1e9,
        "floor_over_sdpa": (projections + attention) / attention,
    }


def time_once(block, x, forward, device, dtype=None):
    """(seconds of one forward+backward, peak bytes above the start); ``dtype``: autocast."""
    xi = x.detach().clone().requires_grad_(True)
    autocast = (
        torch.autocast(device_type=device, dtype=dtype) if dtype else contextlib.nullcontext()
    )
    with PeakMemory(device) as mem:
        start = time.perf_counter()
        with autocast:
            out = forward(block, xi)
        out.float().sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    block.zero_grad(set_to_none=True)
    return elapsed, mem.peak


def naive_bytes(block, shape):
    """Bytes of the affinity matrix and its two same-size companions in backward (fp32)."""
    n = shape[2] * shape[3]
    m = n // 4 if block.sub_sample else n
    return 3 * shape[0] * n * m * 4


def benchmark_block(stage, mode, device, args, dtype_name="fp32"):
    c, h, w, reduction = STAGES[stage]
    torch.manual_seed(0)
    block = WeightedNonLocal2d(
        c, mode=mode, reduction=reduction, weight_init=0.5, attention_backend=args.backend
    ).to(device)
    x = torch.randn(args.batch, c, h, w, device=device)
    row = {"stage": stage, "mode": mode, "device": device, "shape": [args.batch, c, h, w]}
    row["backend"] = args.backend
    row["dtype"] = dtype_name
    theoretical = naive_bytes(block, x.shape)
    row["naive_theoretical_mb"] = theoretical / 2**20
    runs = {"efficient": lambda b, t: b(t)}
    if theoretical <= args.naive_cap_gb * 2**30:
        runs["naive"] = naive_forward
    if mode in ("embedded_gaussian", "gaussian"):
        row.update(softmax_block_flops(block, x.shape))
    if args.sdpa and mode != "concatenation":
        block._sdpa_inputs = [t.to(DTYPES[dtype_name] or t.dtype) for t in sdpa_inputs(block, x)]
        runs["sdpa"] = sdpa_forward
    times = {name: [] for name in runs}
    peaks = dict.fromkeys(runs, 0)
    # The two versions alternate within each round, so that a load change on a shared machine
    # hits both; each reports its best time (the one least disturbed) and its highest peak.
    for round_index in range(args.repeat + 1):
        for name, forward in list(runs.items()):
            try:
                seconds, peak = time_once(block, x, forward, device, DTYPES[dtype_name])
            except (RuntimeError, ValueError) as error:
                if name == "efficient":
                    raise
                # A comparator that does not fit (the naive matrix, or SDPA's math fallback)
                # must not take the block's own figures with it.
                row[f"{name}_error"] = f"{type(error).__name__}: {error}".splitlines()[0]
                del runs[name]
                block.zero_grad(set_to_none=True)
                if device == "cuda":
                    torch.cuda.empty_cache()
                continue
            peaks[name] = max(peaks[name], peak)
            if round_index > 0 or args.repeat == 0:
                times[name].append(seconds)
    for name in ("efficient", "naive") + (("sdpa",) if args.sdpa else ()):
        row[f"{name}_s"] = min(times[name]) if name in runs else None
        row[f"{name}_peak_mb"] = peaks[name] / 2**20 if name in runs else None
    if row.get("sdpa_s"):
        row["efficient_over_sdpa"] = row["efficient_s"] / row["sdpa_s"]
    return row


def benchmark_train_step(config_file, device, steps, extra_opts=()):
    """Seconds per training step of a wNL config and of the same config without NL blocks, and
    the FLOPs of one forward + backward of each on the same batch (``flop_ratio``: the step
    ratio that equal efficiency would give)."""
    from d2common.testing import plugin_cfg, run_train_steps

    timings, models, batch = {}, {}, None
    for label, opts in [("wnl", []), ("plain", ["MODEL.LOWLIGHT_NL.STAGES", "[]"])]:
        opts = list(extra_opts) + opts + ["MODEL.DEVICE", device, "OUTPUT_DIR", "/tmp"]
        cfg = plugin_cfg(config_file, opts)
        run_train_steps(cfg, 1)  # warm-up (data loader start, allocator)
        start = time.perf_counter()
        trainer, _ = run_train_steps(cfg, steps)
        timings[label] = (time.perf_counter() - start) / steps
        models[label] = trainer.model
        if batch is None:
            batch = next(trainer._trainer._data_loader_iter)
    timings["ratio"] = timings["wnl"] / timings["plain"]
    for label, model in models.items():
        timings[f"{label}_gflop"] = step_flops(model, batch) / 1e9
    timings["flop_ratio"] = timings["wnl_gflop"] / timings["plain_gflop"]
    timings["flop_image_sizes"] = [list(x["image"].shape[-2:]) for x in batch]
    return timings


def step_flops(model, batch) -> float:
    """FLOPs of one forward + backward of ``model`` on ``batch``: torch's counter for every
    convolution and matrix product, with each softmax non-local block's attention counted by
    :func:`softmax_block_flops` (x3 for forward + backward, as the counter counts a matrix
    product) in place of what the counter sees of SDPA (nothing on the CPU)."""
    from detectron2.utils.events import EventStorage
    from torch.utils.flop_counter import FlopCounterMode

    blocks = [
        m
        for m in model.modules()
        if isinstance(m, WeightedNonLocal2d) and m.mode in ("embedded_gaussian", "gaussian")
    ]
    seen, backends = [], [b.attention_backend for b in blocks]
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append((m, i[0].shape))) for b in blocks]
    for b in blocks:
        b.attention_backend = "sdpa"  # one kernel whose FLOPs are known, on every device
    try:
        with EventStorage(0), FlopCounterMode(display=False) as counter:
            sum(model(batch).values()).backward()
    finally:
        for b, backend in zip(blocks, backends):
            b.attention_backend = backend
        for h in hooks:
            h.remove()
    model.zero_grad(set_to_none=True)
    counted = counter.get_flop_counts().get("Global", {})
    sdpa = sum(v for op, v in counted.items() if "scaled_dot_product" in str(op))
    attention = sum(3e9 * softmax_block_flops(m, shape)["attention_gflop"] for m, shape in seen)
    return counter.get_total_flops() - sdpa + attention


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    parser.add_argument("--forms", nargs="+", default=list(NONLOCAL_MODES), choices=NONLOCAL_MODES)
    parser.add_argument("--device", default="all", choices=["all", "cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument(
        "--backend", default="auto", choices=ATTENTION_BACKENDS, help="softmax forms' kernel"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed rounds after a warm-up round (best counts)"
    )
    parser.add_argument("--naive-cap-gb", type=float, default=4.0)
    parser.add_argument("--dtypes", nargs="+", default=["fp32"], choices=list(DTYPES))
    parser.add_argument("--sdpa", action="store_true", help="also time bare SDPA of each shape")
    parser.add_argument("--train-step", metavar="CONFIG", help="also time a wNL config's steps")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument(
        "--train-opts", nargs="*", default=[], help="config overrides for --train-step (KEY VALUE)"
    )
    parser.add_argument("--skip-blocks", action="store_true", help="only the --train-step part")
    parser.add_argument("--json", help="write all rows to this JSON file")
    args = parser.parse_args()

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blocks": []}
    print(f"{'stage':>5} {'form':>18} {'dev':>4} {'eff s':>8} {'eff MB':>8} "
          f"{'naive s':>8} {'naive MB':>9} {'naive theory MB':>15}")  # fmt: skip
    cases = [
        (d, t, s, m) for d in devices for t in args.dtypes for s in args.stages for m in args.forms
    ]
    for device, dtype_name, stage, mode in [] if args.skip_blocks else cases:
        try:
            row = benchmark_block(stage, mode, device, args, dtype_name)
        except (RuntimeError, ValueError) as error:  # e.g. out of memory: the other rows still run
            row = {"stage": stage, "mode": mode, "device": device, "dtype": dtype_name}
            row["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
            print(f"{stage:>5} {mode:>18} {device:>4} {dtype_name}: {row['error']}", flush=True)
            result["blocks"].append(row)
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
            continue
        result["blocks"].append(row)
        fmt = lambda v, p=2: "skipped" if v is None else f"{v:.{p}f}"  # noqa: E731
        sdpa = f" sdpa s {fmt(row['sdpa_s'], 3)}" if args.sdpa else ""
        print(
            f"{stage:>5} {mode:>18} {device:>4} {row['efficient_s']:8.2f} "
            f"{row['efficient_peak_mb']:8.0f} {fmt(row['naive_s']):>8} "
            f"{fmt(row['naive_peak_mb'], 0):>9} {row['naive_theoretical_mb']:15.0f}"
            f"{'' if dtype_name == 'fp32' else ' ' + dtype_name}{sdpa}",
            flush=True,
        )
        if args.json:
            _write(args.json, result)
    if args.train_step:
        for device in devices:
            result[f"train_step_{device}"] = benchmark_train_step(
                args.train_step, device, args.train_steps, args.train_opts
            )
            print(f"train step on {device}: {result[f'train_step_{device}']}")
    if args.json:
        _write(args.json, result)


def _write(path, result):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
