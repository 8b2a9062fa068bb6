#!/usr/bin/env python
"""Benchmarks the GRM features and GRMNet's training-step overhead.

    python tools/benchmark_grm.py --json grm_benchmark.json [--device cpu|cuda] [--repeat 20]

1. GRM features of 512 RoIs x 10 references (pool of 1000 post-NMS proposals over 2 images):
   the batched op against the per-RoI reference loop (and the ratio).
2. One training step of GRMNet against the same model without GRM (K = 0, no absolute
   position), on the demo config (random sketches) or ``--config-file``, split into the cost of
   the wider box / mask head inputs (GRM op replaced by zeros) and the GRM op's own (by that
   difference, and timed inside the step).
"""
import argparse
import contextlib
import json
import statistics
import time

import torch


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_once(fn, device):
    """Seconds of one call of ``fn``, between device synchronisations."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def timed(fn, repeat, device):
    """Median of ``repeat`` calls after one warm-up call."""
    fn()
    return statistics.median(time_once(fn, device) for _ in range(repeat))


def bench_op(device, repeat, num_rois=512, top_k=10, pool_size=1000, num_images=2):
    from grmnet.ops import grm_features, grm_features_reference, pad_reference_pool

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(num_images, pool_size, 2, generator=g) * 600
    proposals = [
        torch.cat([p, p + 20 + torch.rand(pool_size, 2, generator=g) * 150], 1) for p in xy
    ]
    scores = [torch.randn(pool_size, generator=g) for _ in range(num_images)]
    cand_image = torch.arange(num_rois) % num_images
    cands = torch.stack([proposals[b][i] for i, b in enumerate(cand_image.tolist())])
    image_hw = torch.full((num_images, 2), 768.0)
    pool = pad_reference_pool([p.to(device) for p in proposals], [s.to(device) for s in scores])
    args = (cands.to(device), cand_image.to(device), *pool, image_hw.to(device))
    batched = timed(lambda: grm_features(*args, top_k=top_k), repeat, device)
    loop = timed(
        lambda: grm_features_reference(cands, cand_image, proposals, scores, image_hw, top_k),
        max(1, repeat // 5),
        "cpu",
    )
    return {"rois": num_rois, "top_k": top_k, "pool": pool_size, "batched_ms": batched * 1e3,
            "per_roi_loop_ms": loop * 1e3, "speedup": loop / batched}  # fmt: skip


def _zero_grm_features(cand, image_idx, *pool, top_k, relative, manner, use_absolute):
    """Stand-in for ``grm_features``: zeros of its output shape (the heads stay as wide)."""
    from grmnet.ops import grm_feature_dim

    dim = grm_feature_dim(top_k, relative, use_absolute)
    return cand.new_zeros(len(cand), dim)


def bench_train_step(device, repeat, config_file, opts):
    """Training-step time of GRMNet, of the same model with the GRM op replaced by zeros of its
    output shape (``heads_only``: what the wider box / mask head inputs cost), and of the model
    without GRM (K = 0, no absolute position). The GRM share of a step splits into the heads'
    part, (heads_only - without) / grmnet, and the op's, (grmnet - heads_only) / grmnet. The
    variants' steps alternate (medians over ``repeat`` rounds), so that a machine whose speed
    drifts slows all of them alike."""
    from unittest import mock

    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    from d2common.testing import plugin_cfg

    no_grm = ["MODEL.GRMNET.GRM.TOP_K", "0", "MODEL.GRMNET.GRM.ABSOLUTE", "False"]
    variants = {"grmnet": ([], None), "heads_only": ([], _zero_grm_features)}
    variants["without_grm"] = (no_grm, None)
    steps = {}
    for name, (extra, stand_in) in variants.items():
        cfg = plugin_cfg(config_file, ["MODEL.DEVICE", device] + opts + extra)
        torch.manual_seed(0)
        model = build_model(cfg).train()
        # lr 0: every step repeats the same computation (trained weights would change the
        # proposals, and with them the head's work, differently in each variant).
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
        batch = _random_batch(cfg)

        def step(model=model, batch=batch, optimizer=optimizer, stand_in=stand_in):
            patch = (
                mock.patch("grmnet.modeling.roi_heads.grm_features", stand_in)
                if stand_in
                else contextlib.nullcontext()
            )
            with patch:
                losses = model(batch)
                optimizer.zero_grad()
                sum(losses.values()).backward()
                optimizer.step()

        steps[name] = step
    times = {name: [] for name in steps}
    with EventStorage(0):
        for _ in range(repeat + 1):  # the first round warms up
            for name, step in steps.items():
                times[name].append(time_once(step, device))
        op_ms = _op_time_in_step(steps["grmnet"], repeat, device) * 1e3
        gflop = {name: _step_flops(step) / 1e9 for name, step in steps.items()}
    results = {f"{name}_ms": statistics.median(t[1:]) * 1e3 for name, t in times.items()}
    results.update({f"{name}_gflop": value for name, value in gflop.items()})
    # What GRM adds to the arithmetic of a step: free of the timing noise, blind to launches.
    results["flop_share"] = 1.0 - gflop["without_grm"] / gflop["grmnet"]
    grmnet_ms = results["grmnet_ms"]
    results["overhead"] = grmnet_ms / results["without_grm_ms"] - 1.0
    results["heads_share"] = (results["heads_only_ms"] - results["without_grm_ms"]) / grmnet_ms
    results["op_share"] = (grmnet_ms - results["heads_only_ms"]) / grmnet_ms
    results["op_in_step_ms"] = op_ms
    results["op_in_step_share"] = op_ms / grmnet_ms
    return results


def _step_flops(step) -> float:
    """FLOPs of one training step (forward and backward) by ``torch.utils.flop_counter``:
    convolutions and matrix products; torchvision's RoIAlign and elementwise ops count 0."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def _op_time_in_step(step, repeat, device):
    """Median over steps of the summed time of the step's ``grm_features`` calls (box and mask
    heads), each timed between device synchronisations: the op's own cost, which the
    difference of two step timings cannot resolve when it is small."""
    from unittest import mock

    from grmnet.modeling import roi_heads

    original, spent = roi_heads.grm_features, []

    def timed_op(*args, **kwargs):
        out = []
        spent[-1] += time_once(lambda: out.append(original(*args, **kwargs)), device)
        return out[0]

    with mock.patch("grmnet.modeling.roi_heads.grm_features", timed_op):
        for _ in range(repeat + 1):  # the first step warms up
            spent.append(0.0)
            step()
    return statistics.median(spent[1:])


def _random_batch(cfg):
    from detectron2.structures import BitMasks, Boxes, Instances

    g = torch.Generator().manual_seed(1)
    size = cfg.INPUT.MIN_SIZE_TRAIN[0]
    batch = []
    for _ in range(cfg.SOLVER.IMS_PER_BATCH):
        image = torch.full((3, size, size), 255.0)
        inst = Instances((size, size))
        boxes, masks = [], torch.zeros(3, size, size, dtype=torch.bool)
        for i in range(3):
            x, y = (torch.rand(2, generator=g) * size * 0.6).long().tolist()
            w, h = int(size * 0.2), int(size * 0.25)
            image[:, y : y + h, x : x + w] = 0
            masks[i, y : y + h, x : x + w] = True
            boxes.append([x, y, x + w, y + h])
        inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
        inst.gt_classes = torch.tensor([42, 42, 28])
        inst.gt_masks = BitMasks(masks)
        tokens = torch.zeros(cfg.MODEL.GRMNET.LANGUAGE.MAX_LENGTH, dtype=torch.long)
        tokens[:4] = torch.tensor([2, 3, 4, 5])
        batch.append({"image": image, "instances": inst, "expression_tokens": tokens})
    return batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--config-file", default="configs/GRMNet/demo.yaml")
    parser.add_argument("--skip-train-step", action="store_true")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args()

    results = {"device": args.device, "torch_threads": torch.get_num_threads()}
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    results["grm_op"] = bench_op(args.device, args.repeat)
    op_line = "GRM features (512 RoIs x 10 references): batched {batched_ms:.2f} ms, per-RoI loop "
    print(
        (op_line + "{per_roi_loop_ms:.1f} ms, speed-up x{speedup:.0f}").format(**results["grm_op"])
    )
    if not args.skip_train_step:
        import grmnet  # noqa: F401

        results["train_step"] = bench_train_step(
            args.device, max(1, args.repeat // 4), args.config_file, args.opts
        )
        step_line = (
            "training step ({}): GRMNet {grmnet_ms:.0f} ms, without GRM {without_grm_ms:.0f} ms"
        )
        print(
            (step_line + ", overhead {overhead:+.1%}").format(
                args.config_file, **results["train_step"]
            )
        )
        print(
            "of the GRMNet step: wider heads {heads_share:.1%} (zeros in place of the GRM op: "
            "{heads_only_ms:.0f} ms), the GRM op {op_share:.1%} by the difference, "
            "{op_in_step_share:.1%} timed in the step ({op_in_step_ms:.2f} ms); GRM adds "
            "{flop_share:.1%} of the step's FLOPs ({grmnet_gflop:.3g} against "
            "{without_grm_gflop:.3g} GFLOP)".format(**results["train_step"])
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
