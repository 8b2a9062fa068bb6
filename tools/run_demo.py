#!/usr/bin/env python
"""``make demo``: trains every installed project briefly on its toy dataset, evaluates it, draws
its visualisations and prints one results table.

For each project, ``<package>.demo.DEMO_RUNS`` lists the runs (main method first, then the
baselines it is compared with); each run is ``tools/train_net.py`` in a subprocess, logged to
``<output>/<Project>/<run>/log.txt``. Results go to ``<output>/results.json`` and ``results.md``.

    python tools/run_demo.py --output-dir output/demo [--projects LowLightNL GRMNet] [KEY VALUE ...]
"""
import argparse
import importlib
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="output/demo")
    parser.add_argument("--projects", nargs="*", help="project directories to run (default: all)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every run")
    return parser.parse_args()


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower()


def run_one(config_file, opts, out_dir: Path, eval_only: bool, weights=None):
    """Runs tools/train_net.py; returns (flattened results dict or None, seconds)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file", config_file]
    if eval_only:
        cmd.append("--eval-only")
    cmd += ["OUTPUT_DIR", str(out_dir)] + list(opts)
    if weights:
        cmd += ["MODEL.WEIGHTS", weights]
    # One intra-op thread per run unless the user says otherwise: the data-loader workers use
    # the other cores, and oversubscribed OpenMP threads slowed small-model steps by 10x or more.
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    start = time.time()
    with open(out_dir / "stdout.txt", "w") as log:
        proc = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = time.time() - start
    result_file = out_dir / ("eval_only_results.json" if eval_only else "eval_results.json")
    if proc.returncode != 0 or not result_file.exists():
        return None, seconds
    return json.loads(result_file.read_text()), seconds


def format_value(value):
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def main():
    args = parse_args()
    sys.path.insert(0, str(REPO))
    from d2common.projects import available_projects
    from d2common.testing import plugin_cfg

    output_dir = (REPO / args.output_dir).resolve()
    rows, failures = [], []
    projects = [p for p in available_projects() if not args.projects or p[0] in args.projects]
    for project_dir, package, _ in projects:
        try:
            demo = importlib.import_module(f"{package}.demo")
        except ModuleNotFoundError:
            print(f"[demo] {project_dir}: no {package}.demo module, skipped", flush=True)
            continue
        for index, run in enumerate(demo.DEMO_RUNS):
            label, config_file, opts = run[:3]
            eval_only = bool(run[3]) if len(run) > 3 else False
            out_dir = output_dir / project_dir / slug(label)
            print(f"[demo] {project_dir} / {label}: {config_file} ...", flush=True)
            results, seconds = run_one(config_file, list(opts) + args.opts, out_dir, eval_only)
            status = "ok" if results is not None else f"FAILED (log: {out_dir / 'stdout.txt'})"
            print(f"[demo] {project_dir} / {label}: {status} in {seconds:.0f} s", flush=True)
            if results is None:
                failures.append(f"{project_dir}/{label}")
            metrics = {k: (results or {}).get(k) for k in demo.HEADLINE_METRICS}
            rows.append({"project": project_dir, "run": label, "seconds": seconds, **metrics})
            if index == 0 and results is not None:
                weights = out_dir / "model_final.pth"
                cfg = plugin_cfg(config_file, list(opts) + args.opts)
                cfg.MODEL.WEIGHTS = str(weights) if weights.exists() else cfg.MODEL.WEIGHTS
                cfg.OUTPUT_DIR = str(out_dir)
                vis_dir = output_dir / project_dir / "visualizations"
                demo.visualize_demo(cfg, str(vis_dir))
                print(f"[demo] {project_dir}: visualisations in {vis_dir}", flush=True)

    lines = ["| project | run | metrics | time (s) |", "| --- | --- | --- | --- |"]
    for row in rows:
        metrics = ", ".join(
            f"{k} {format_value(v)}"
            for k, v in row.items()
            if k not in ("project", "run", "seconds")
        )
        lines.append(f"| {row['project']} | {row['run']} | {metrics} | {row['seconds']:.0f} |")
    table = "\n".join(lines)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.md").write_text(table + "\n")
    (output_dir / "results.json").write_text(json.dumps(rows, indent=2))
    print("\n" + table + "\n")
    print(f"Results, logs, checkpoints and visualisations: {output_dir}")
    if failures:
        print("Failed runs: " + ", ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
