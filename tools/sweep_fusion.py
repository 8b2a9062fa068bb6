#!/usr/bin/env python
"""Figs. 4 and 5 of the paper as sweeps: one training per method, value and seed, evaluated with
fresh artifacts; plots of the mean over seeds with a 95% confidence band (Student t).

    # Fig. 4: number of views (artifact area 0.5, views alternating cloud / missing data)
    python tools/sweep_fusion.py --sweep views --values 2 3 4 5 6 --seeds 0 1 2
    # Fig. 5: artifact area, two views (one cloudy, one with missing data)
    python tools/sweep_fusion.py --sweep area --values 0.1 0.2 0.3 0.4 0.5 --seeds 0 1 2

Default model and data: ``configs/OverheadFusion/demo.yaml`` (toy tiles; ``--config-file`` and
``KEY VALUE`` overrides for others). Every run lives in
``<output-dir>/<sweep>/<method>/<value>/seed_<seed>/`` (``config.yaml``, checkpoints,
``results.json``; finished runs are read back, interrupted ones resume). Writes
``sweep.json`` (per method and value: mean, sample std, the 95% band, every seed's value),
``sweep.md`` and ``sweep_<metric>.png``.
"""
import argparse
import json
import math
import os

import numpy as np
from detectron2.utils.logger import setup_logger

from d2common.testing import plugin_cfg
from overhead_fusion.engine import train_once

METHOD_LABELS = {"quality": "ours (quality)", "mean": "baseline (mean)", "clean": "clean images"}


def sweep_opts(sweep: str, value) -> list:
    """Config overrides of one sweep point."""
    if sweep == "views":
        k = int(value)
        return ["INPUT.OVERHEAD_FUSION.NUM_VIEWS", f"({k}, {k})"]
    return [
        "INPUT.OVERHEAD_FUSION.NUM_VIEWS", "(2, 2)",
        "INPUT.OVERHEAD_FUSION.ARTIFACT_TYPES", "('cloud', 'occlusion')",
        "INPUT.OVERHEAD_FUSION.AREA_FRACTION", str(float(value)),
    ]  # fmt: skip


def t_quantile_975(dof: int) -> float:
    """The 0.975 quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))


def band(values) -> dict:
    """Mean, sample std and the 95% confidence interval of the mean (t, n - 1 dof)."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "sd": float("nan"), "low": mean, "high": mean, "runs": v.tolist()}
    sd = float(v.std(ddof=1))
    half = t_quantile_975(len(v) - 1) * sd / math.sqrt(len(v))
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "runs": v.tolist()}


def plot(summary, sweep: str, metric: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, points in summary.items():
        xs = [float(x) for x in points]
        stats = [points[x][metric] for x in points]
        means = [s["mean"] for s in stats]
        line = ax.plot(xs, means, marker="o", label=METHOD_LABELS.get(method, method))[0]
        ax.fill_between(
            xs,
            [s["low"] for s in stats],
            [s["high"] for s in stats],
            alpha=0.2,
            color=line.get_color(),
        )
    ax.set_xticks([float(x) for x in next(iter(summary.values()))])
    ax.set_xlabel("number of views" if sweep == "views" else "artifact area per view")
    ax.set_ylabel(metric)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sweep", required=True, choices=["views", "area"])
    p.add_argument("--values", nargs="+", required=True)
    p.add_argument("--methods", nargs="+", default=["quality", "mean"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--config-file", default="configs/OverheadFusion/demo.yaml")
    p.add_argument("--metrics", nargs="+", default=["mIoU", "L1"])
    p.add_argument("--output-dir", default="output/sweep_fusion")
    p.add_argument("--no-resume", action="store_true", help="train every run from scratch")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logger(name="overhead_fusion")
    root = os.path.join(args.output_dir, args.sweep)
    summary = {}
    for method in args.methods:
        summary[method] = {}
        for value in args.values:
            runs = []
            for seed in args.seeds:
                out = os.path.join(root, method, str(value), f"seed_{seed}")
                opts = sweep_opts(args.sweep, value) + list(args.opts)
                opts += ["MODEL.OVERHEAD_FUSION.FUSION", method, "SEED", str(seed)]
                cfg = plugin_cfg(os.path.abspath(args.config_file), opts + ["OUTPUT_DIR", out])
                results = train_once(cfg, resume=not args.no_resume)
                runs.append(next(iter(results.values())))
            summary[method][value] = {m: band([r[m] for r in runs]) for m in args.metrics}
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "sweep.json"), "w") as f:
        json.dump({"args": vars(args), "summary": summary}, f, indent=2)
    lines = [f"| method | {args.sweep} | " + " | ".join(args.metrics) + " |"]
    lines.append("| --- | --- | " + " | ".join("---" for _ in args.metrics) + " |")
    for method, points in summary.items():
        for value, stats in points.items():
            cells = [
                f"{s['mean']:.4g} [{s['low']:.4g}, {s['high']:.4g}]"
                for s in (stats[m] for m in args.metrics)
            ]
            lines.append(f"| {method} | {value} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    with open(os.path.join(root, "sweep.md"), "w") as f:
        f.write(f"Mean over seeds {args.seeds} [95% confidence interval]\n\n{table}\n")
    print(table)
    for metric in args.metrics:
        plot(summary, args.sweep, metric, os.path.join(root, f"sweep_{metric}.png"))
    return summary


if __name__ == "__main__":
    main()
