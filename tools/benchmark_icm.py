#!/usr/bin/env python
"""Times the batched ICM loss against the direct reference, and its share of a training step.

N = 32 clusters, M in {5, 20, 50} instances, A1 at the three resolutions of a 352 x 1216 input
(F1 22 x 76, F2 44 x 152, F3 88 x 304). The step share compares one training step of
``--step-config`` (default: Table V's ResNet-50 model, D = 256, N = 32) with and without the ICM
loss.

    python tools/benchmark_icm.py --json icm_bench.json [--device cuda] [--repeats 5]
"""
import argparse
import json
import platform
import time

import numpy as np
import torch

from icm_depth.ops import icm_loss, icm_loss_reference

INPUT_SIZE = (352, 1216)
LEVELS = [(INPUT_SIZE[0] // s, INPUT_SIZE[1] // s) for s in (16, 8, 4)]


def make_inputs(num_instances, num_clusters=32, batch=1, seed=0, device="cpu"):
    """Random A1 per level, GT depth with 10% invalid pixels, M box instances (B, H, W)."""
    g = torch.Generator().manual_seed(seed)
    h, w = INPUT_SIZE
    depth = torch.rand(batch, h, w, generator=g) * 70 + 1
    depth[torch.rand(batch, h, w, generator=g) < 0.1] = 0
    ids = torch.zeros(batch, h, w, dtype=torch.long)
    for b in range(batch):
        for i in range(1, num_instances + 1):
            y, x = (int(torch.randint(0, n - 40, (1,), generator=g)) for n in (h, w))
            bh, bw = (int(torch.randint(8, 40, (1,), generator=g)) for _ in range(2))
            ids[b, y : y + bh, x : x + bw] = i
    attns = [
        torch.randn(batch, num_clusters, lh * lw, generator=g).softmax(1).to(device)
        for lh, lw in LEVELS
    ]
    return attns, depth.to(device), ids.to(device)


def _timed(fn, repeats, device):
    fn()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


# Operators that only make a new view of a tensor (no kernel on a GPU).
VIEW_OPS = frozenset(
    "aten::" + name
    for name in (
        "view alias slice select transpose t permute unsqueeze squeeze expand expand_as flatten "
        "unflatten as_strided detach detach_ unbind split narrow view_as _unsafe_view "
        "resolve_conj resolve_neg lift_fresh numpy_T _reshape_alias"
    ).split()
)
# Operators that copy only when they have to (a child operator shows that they did).
MAYBE_COPY_OPS = frozenset(("aten::to", "aten::reshape", "aten::contiguous", "aten::type_as"))


def count_dispatched_ops(fn) -> int:
    """Operators ``fn`` runs that compute or copy (aten calls not made by another aten call,
    views left out), forward and backward: on a GPU each is at least one kernel launch, which
    bounds a loss of small kernels."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.events()
    has_child = {id(e.cpu_parent) for e in events if e.cpu_parent is not None}
    count = 0
    for e in events:
        if not e.key.startswith("aten::") or e.key in VIEW_OPS:
            continue
        if e.cpu_parent is not None and e.cpu_parent.key.startswith("aten::"):
            continue
        if e.key in MAYBE_COPY_OPS and id(e) not in has_child:
            continue
        count += 1
    return count


def bench_loss(device, repeats, ref_repeats):
    """Per M: forward and forward + backward time of the loss as the device runs it, of both
    level layouts (one level at a time / all levels as one zero-padded batch) with their
    dispatched-op counts, and the direct reference."""
    rows = []
    for m in (5, 20, 50):
        attns, depth, ids = make_inputs(m, device=device)
        attns = [a.requires_grad_() for a in attns]

        def forward(attns=attns, depth=depth, ids=ids):
            with torch.no_grad():
                icm_loss(attns, LEVELS, depth, ids)

        def forward_backward(stack=None, attns=attns, depth=depth, ids=ids):
            sum(icm_loss(attns, LEVELS, depth, ids, stack_levels=stack)).backward()

        np_args = ([a.detach().cpu().numpy() for a in attns], LEVELS, depth.cpu().numpy())
        np_args += (ids.cpu().numpy(),)
        t_op = _timed(forward, repeats, device)
        t_train = _timed(forward_backward, repeats, device)
        layouts = {}
        for name, stack in (("per_level", False), ("stacked", True)):
            layouts[name] = {
                "fwd_bwd_s": _timed(lambda s=stack: forward_backward(s), repeats, device),
                "dispatched_ops": count_dispatched_ops(lambda s=stack: forward_backward(s)),
            }
        t_ref = _timed(lambda args=np_args: icm_loss_reference(*args), ref_repeats, "cpu")
        rows.append(
            {"M": m, "icm_loss_s": t_op, "icm_loss_fwd_bwd_s": t_train, "reference_s": t_ref,
             "speedup": t_ref / t_op, "layouts": layouts}
        )  # fmt: skip
        print(
            f"[{device}] M={m:2d}: batched {t_op * 1e3:8.1f} ms (+ backward {t_train * 1e3:8.1f} "
            f"ms), direct reference {t_ref * 1e3:9.1f} ms: x{t_ref / t_op:.1f}"
        )
        print(
            "        "
            + "; ".join(
                f"{name}: {v['fwd_bwd_s'] * 1e3:.1f} ms fwd + bwd, {v['dispatched_ops']} ops"
                for name, v in layouts.items()
            )
        )
    return rows


def bench_step(config, device, repeats):
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    from d2common.testing import plugin_cfg

    cfg = plugin_cfg(config, ["MODEL.WEIGHTS", "", "MODEL.DEVICE", device])
    model = build_model(cfg).train()
    attns, depth, ids = make_inputs(20, device="cpu")
    image = torch.rand(3, *INPUT_SIZE) * 255
    batch = [{"image": image, "depth": depth[0], "instance_ids": ids[0]}]

    def step():
        model.zero_grad(set_to_none=True)
        sum(model(batch).values()).backward()

    with EventStorage(0):
        t_with = _timed(step, repeats, device)
        weight, model.icm_weight = model.icm_weight, 0.0
        t_without = _timed(step, repeats, device)
        model.icm_weight = weight
    share = (t_with - t_without) / t_with
    print(
        f"[{device}] training step ({config}, 1 x 352 x 1216, M = 20): {t_with:.2f} s with ICM, "
        f"{t_without:.2f} s without: ICM share {100 * share:.1f}%"
    )
    return {
        "config": config,
        "step_with_icm_s": t_with,
        "step_without_icm_s": t_without,
        "icm_share": share,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--json", help="write the results to this file")
    p.add_argument(
        "--device", action="append", help="cpu / cuda (default: cpu, and cuda if present)"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ref-repeats", type=int, default=1)
    p.add_argument(
        "--step-config", default="configs/ICMDepth/tableV_III_icm_R50_40k_cityscapes_dvps.yaml"
    )
    p.add_argument("--step-repeats", type=int, default=1)
    p.add_argument("--skip-step", action="store_true", help="time the loss only")
    args = p.parse_args(argv)
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    results = {
        "machine": {"platform": platform.platform(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "input_size": INPUT_SIZE, "levels": LEVELS, "num_clusters": 32, "devices": {},
    }  # fmt: skip
    for device in devices:
        entry = {"loss": bench_loss(device, args.repeats, args.ref_repeats)}
        if not args.skip_step:
            entry["step"] = step = bench_step(args.step_config, device, args.step_repeats)
            loss_m20 = next(r for r in entry["loss"] if r["M"] == 20)["icm_loss_fwd_bwd_s"]
            # The difference of two step timings drowns in noise when the loss is small.
            step["icm_share_of_loss_timing"] = loss_m20 / step["step_with_icm_s"]
            print(
                f"[{device}] ICM loss (M = 20, forward + backward) / training step: "
                f"{100 * step['icm_share_of_loss_timing']:.1f}%"
            )
        results["devices"][device] = entry
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print("wrote", args.json)
    return results


if __name__ == "__main__":
    main()
