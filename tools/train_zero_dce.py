#!/usr/bin/env python
"""Trains Zero-DCE++ (the enhancer of the two-stage baseline) on low-light images alone.

    python tools/train_zero_dce.py --dataset lowlight_nl_toy_train --output output/zero_dce_toy
    python tools/train_zero_dce.py --images /data/lowlight/train --output output/zero_dce \
        --iters 30000 --size 512 --batch-size 8
    python tools/train_zero_dce.py ... --resume          # continues from OUTPUT's last state

No reference images: the loss is the release's non-reference objective
(1600 L_tvA + L_spa + 5 L_col + 10 L_exp, E = 0.6), Adam lr 1e-4, weight decay 1e-4, gradient
norm clipped at 0.1. Writes ``OUTPUT/zero_dce++.pth``, a plain state dict in the authors' key
layout (``INPUT.LOWLIGHT_NL.ZERO_DCE.WEIGHTS`` takes it, as it takes their ``Epoch99.pth``), and
``OUTPUT/zero_dce++_state.pth`` (iteration, optimizer) for ``--resume``. Unreadable images are
skipped with a warning and counted.
"""
import argparse
import logging
import os
import time
from pathlib import Path

import torch

from lowlight_nl.zero_dce import ZeroDCEPP, load_zero_dce_weights, save_zero_dce_weights
from lowlight_nl.zero_dce.train import IMAGE_SUFFIXES, LowLightBatches, build_optimizer, train_step

WEIGHTS_FILE = "zero_dce++.pth"
STATE_FILE = "zero_dce++_state.pth"


def image_paths(args) -> list:
    """Files of ``--images`` (sorted) or of the registered ``--dataset``."""
    if args.images:
        folder = Path(args.images)
        if not folder.is_dir():
            raise SystemExit(f"--images {folder} is not a folder")
        paths = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SystemExit(f"no {'/'.join(IMAGE_SUFFIXES)} images in {folder}")
        return paths
    from detectron2.data import DatasetCatalog

    from d2common.projects import import_all_projects

    import_all_projects()
    return [record["file_name"] for record in DatasetCatalog.get(args.dataset)]


def save(model, optimizer, iteration: int, output: str) -> None:
    save_zero_dce_weights(model, os.path.join(output, WEIGHTS_FILE))
    tmp = os.path.join(output, STATE_FILE + ".tmp")
    torch.save({"iteration": iteration, "optimizer": optimizer.state_dict()}, tmp)
    os.replace(tmp, os.path.join(output, STATE_FILE))


def train(args) -> dict:
    """Runs the training described by ``args``; returns the last step's figures."""
    torch.manual_seed(args.seed)
    paths = image_paths(args)
    model = ZeroDCEPP(args.scale_factor)
    optimizer = build_optimizer(model, args.lr, args.weight_decay)
    start = 0
    weights = os.path.join(args.output, WEIGHTS_FILE)
    if args.resume and os.path.isfile(os.path.join(args.output, STATE_FILE)):
        load_zero_dce_weights(model, weights)
        state = torch.load(os.path.join(args.output, STATE_FILE), weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        start = state["iteration"]
        print(f"resumed from {weights} at iteration {start}")
    elif args.init:
        load_zero_dce_weights(model, args.init)
    # A resumed run draws a new image order (seeded by the iteration) rather than replaying one.
    stream = LowLightBatches(paths, args.batch_size, args.size, args.seed + start)
    batches = iter(stream)
    print(f"{len(paths)} images, iterations {start} -> {args.iters}, output {args.output}")
    stats, t0 = {}, time.perf_counter()
    for it in range(start, args.iters):
        stats = train_step(model, optimizer, next(batches), args.grad_clip, args.exposure)
        if (it + 1) % args.print_every == 0 or it + 1 == args.iters:
            losses = " ".join(f"{k}={v:.4f}" for k, v in stats.items() if k.startswith("loss_"))
            elapsed = time.perf_counter() - t0
            print(f"iter {it + 1}/{args.iters} total={stats['total']:.4f} {losses} "
                  f"output mean={stats['mean']:.3f} ({elapsed:.1f} s)")  # fmt: skip
        if (it + 1) % args.checkpoint_every == 0 or it + 1 == args.iters:
            save(model, optimizer, it + 1, args.output)
    if stream.skipper.num_skipped:
        logging.warning("skipped %d unreadable images: %s", stream.skipper.num_skipped,
                        dict(stream.skipper.reasons))  # fmt: skip
    stats["skipped"] = stream.skipper.num_skipped
    print(f"weights written to {weights}")
    return stats


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="folder of low-light images")
    source.add_argument("--dataset", help="registered detectron2 dataset (its image files)")
    p.add_argument("--output", default="output/zero_dce")
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=512, help="images are resized to size x size")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--grad-clip", type=float, default=0.1)
    p.add_argument("--scale-factor", type=int, default=1, help="1 in the release's training")
    p.add_argument("--exposure", type=float, default=0.6, help="well-exposedness level E")
    p.add_argument("--init", help="weights to start from (e.g. the authors' Epoch99.pth)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT's last state")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--print-every", type=int, default=10)
    p.add_argument("--checkpoint-every", type=int, default=100)
    return p


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    train(parser().parse_args())
