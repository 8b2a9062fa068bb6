#!/usr/bin/env python
"""``make gpu-check``: runs every CUDA path of the plugin on one host and writes one report.

    python tools/gpu_check.py [--output-dir output/gpu_check] [--budget-s 480] [--only STEP ...]

Steps, each a subprocess with its own timeout (a failure or timeout does not stop the others):

- ``environment``: Python, torch, CUDA build, driver, GPUs, and which imports work.
- ``op_tests``: every op test file (``tests/*/test_*ops*.py`` and the non-local op test) on CUDA,
  i.e. without its CPU parametrisations; without CUDA the files are only collected (imports).
- ``bench_nonlocal``, ``bench_grm``, ``bench_icm``: the benchmarks on CUDA at the paper shapes,
  each writing JSON (non-local block vs naive block vs bare SDPA at res2-res5, fp32 and bf16;
  GRM and ICM time and share of a training step).
- ``train_<Project>`` then ``eval_<Project>``: 20 iterations of each project's paper config on
  CUDA with ``SOLVER.AMP.ENABLED True`` (toy data, shrunk input, no pretrained weights), then
  ``--eval-only`` on the checkpoint it wrote.
- ``nccl``: a 2-process training with the NCCL backend when two GPUs are present.

Without CUDA the CUDA steps are skipped with a message (``--cpu-iters N`` runs the trainings on
the CPU instead, without AMP, as a check of this tool and of an environment). The whole run stays
within ``--budget-s``: a step gets at most the time left, and steps past the budget are skipped.
Writes ``report.json`` and ``report.md`` (plus each step's log and JSON) and exits 1 when any
step failed or timed out.

``--bundle DIR`` (or ``make gpu-check BUNDLE=DIR``) unpacks the offline bundle made by
``tools/pack_offline_bundle.py`` into ``<output-dir>/site`` and puts it on every step's
``PYTHONPATH``: for hosts where nothing can be installed.
"""

import argparse
import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]

# The non-local op test is named after the op, not "*ops*".
OP_TEST_GLOBS = ["tests/*/test_*ops*.py", "tests/lowlight_nl/test_lowlight_nl_nonlocal_op.py"]

# Imports the report lists; the first group must work for the op tests, the second for the rest.
OP_MODULES = [
    "torch",
    "numpy",
    "pytest",
    "lowlight_nl.ops",
    "flash_ambient.ops",
    "grmnet.ops",
    "icm_depth.ops",
    "overhead_fusion.ops",
]
PLUGIN_MODULES = [
    "torchvision",
    "cv2",
    "scipy",
    "skimage",
    "PIL",
    "pycocotools",
    "fvcore",
    "iopath",
    "detectron2",
    "detectron2._C",
    "d2common.projects",
]
# Missing without harm: detectron2 then uses torchvision's ROIAlign / NMS and pycocotools' COCOeval.
OPTIONAL_MODULES = {"detectron2._C"}

# Each project's paper config, with the overrides that fit it into the time box: toy data (no
# dataset needed on the host), no pretrained weights (no network), a smaller input.
PAPER_RUNS = {
    "LowLightNL": (
        "configs/LowLightNL/wnl-eg_R50_FPN_10ep_coco_lowlight.yaml",
        [
            "DATASETS.TRAIN",
            "('lowlight_nl_toy_train',)",
            "DATASETS.TEST",
            "('lowlight_nl_toy_val',)",
        ]
        + ["INPUT.MIN_SIZE_TRAIN", "(320,)", "INPUT.MAX_SIZE_TRAIN", "512"]
        + ["INPUT.MIN_SIZE_TEST", "320", "INPUT.MAX_SIZE_TEST", "512", "SOLVER.IMS_PER_BATCH", "2"]
        + ["MODEL.ROI_HEADS.NUM_CLASSES", "3"]
        # Without the COCO weights the paper's R50 has FrozenBN at identity statistics: res5
        # activations reach ~6500 at init and the run diverges within 20 iterations, in fp32 on
        # the CPU as well. GroupNorm keeps a from-scratch run finite.
        + ["MODEL.RESNETS.NORM", "GN"],
    ),
    "FlashAmbient": (
        "configs/FlashAmbient/flash_ambient_vgg16_1000ep_faid.yaml",
        ["DATASETS.TRAIN", "('flash_ambient_toy_train',)"]
        + ["DATASETS.TEST", "('flash_ambient_toy_val',)"]
        + ["INPUT.FLASH_AMBIENT.RESIZE", "(128, 96)", "INPUT.FLASH_AMBIENT.CROP_BASE", "96"]
        + ["INPUT.FLASH_AMBIENT.CROP_SIZE", "64"],
    ),
    "GRMNet": (
        "configs/GRMNet/grmnet_R50_FPN_270k_sketchyscene.yaml",
        ["DATASETS.TRAIN", "('grmnet_toy_train',)", "DATASETS.TEST", "('grmnet_toy_val',)"]
        + ["INPUT.MIN_SIZE_TRAIN", "(256,)", "INPUT.MAX_SIZE_TRAIN", "256"]
        + ["INPUT.MIN_SIZE_TEST", "256", "INPUT.MAX_SIZE_TEST", "256", "SOLVER.IMS_PER_BATCH", "2"],
    ),
    "OverheadFusion": (
        "configs/OverheadFusion/quality_unet16_20ep_cityosm.yaml",
        ["DATASETS.TRAIN", "('overhead_fusion_toy_train',)"]
        + [
            "DATASETS.TEST",
            "('overhead_fusion_toy_val',)",
            "INPUT.OVERHEAD_FUSION.IMAGE_SIZE",
            "64",
        ],
    ),
    "ICMDepth": (
        "configs/ICMDepth/tableV_III_icm_R50_40k_cityscapes_dvps.yaml",
        ["DATASETS.TRAIN", "('icm_depth_toy_train',)", "DATASETS.TEST", "('icm_depth_toy_val',)"]
        + ["INPUT.ICM_DEPTH.CROP_SIZE", "[]", "SOLVER.IMS_PER_BATCH", "2"],
    ),
}
COMMON_TRAIN_OPTS = ["MODEL.WEIGHTS", "", "SOLVER.CHECKPOINT_PERIOD", "100000"]
COMMON_TRAIN_OPTS += ["TEST.EVAL_PERIOD", "0", "DATALOADER.NUM_WORKERS", "2"]


@dataclasses.dataclass
class Step:
    """One check: a command, its time limit, and what it needs to run at all."""

    name: str
    cmd: List[str]
    timeout_s: float
    needs: Optional[str] = None  # a reason to skip, or None when the step can run
    after: Optional[str] = None  # name of a step that must have passed first
    json_out: Optional[Path] = None  # a file the command writes, attached to the report
    junit: Optional[Path] = None
    env: Dict[str, str] = dataclasses.field(default_factory=dict)


def project_paths() -> List[str]:
    """The folders holding the project packages (so they import without being installed)."""
    return [str(p) for p in sorted((REPO / "projects").iterdir()) if p.is_dir()]


def subprocess_env(site: Optional[Path]) -> Dict[str, str]:
    """Environment of every step: project folders (and the unpacked bundle) on PYTHONPATH."""
    env = dict(os.environ)
    paths = project_paths()
    if site is not None:
        paths.append(str(site))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


PROBE = r"""
import importlib, json, sys
out = {"python": sys.version.split()[0], "executable": sys.executable, "modules": {}}
for name in sys.argv[1:]:
    try:
        mod = importlib.import_module(name)
        out["modules"][name] = {"ok": True, "version": str(getattr(mod, "__version__", "")),
                                "file": str(getattr(mod, "__file__", ""))}
    except Exception as e:  # noqa: BLE001 - report every failure, whatever its type
        out["modules"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
try:
    import torch
    out["torch"] = torch.__version__
    out["torch_cuda_build"] = torch.version.cuda
    out["cuda_available"] = torch.cuda.is_available()
    out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if out["gpus"]:
        out["bf16_supported"] = torch.cuda.is_bf16_supported()
        out["capability"] = list(torch.cuda.get_device_capability(0))
except Exception as e:  # noqa: BLE001
    out["torch_error"] = f"{type(e).__name__}: {e}"
print("PROBE_JSON " + json.dumps(out))
"""


def probe_environment(env: Dict[str, str], timeout_s: float = 120) -> dict:
    """Imports every listed module in a fresh interpreter; returns what worked and the GPUs."""
    cmd = [sys.executable, "-c", PROBE] + OP_MODULES + PLUGIN_MODULES
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    for line in proc.stdout.splitlines():
        if line.startswith("PROBE_JSON "):
            info = json.loads(line[len("PROBE_JSON ") :])
            break
    else:
        raise RuntimeError(f"environment probe failed (exit {proc.returncode}): {proc.stderr}")
    info["driver"] = nvidia_smi_driver()
    return info


def nvidia_smi_driver() -> Optional[str]:
    """The NVIDIA driver version from nvidia-smi, or None where there is none."""
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if proc.returncode == 0 and lines else None


def op_test_files() -> List[str]:
    files = sorted({str(p.relative_to(REPO)) for g in OP_TEST_GLOBS for p in REPO.glob(g)})
    if not files:
        raise FileNotFoundError(f"no op test files under {REPO / 'tests'} match {OP_TEST_GLOBS}")
    return files


def plan_steps(args, info: dict, out: Path) -> List[Step]:
    """The steps of this run, in order, each either runnable or carrying its reason to skip."""
    py = sys.executable
    cuda = bool(info.get("cuda_available"))
    gpus = len(info.get("gpus", []))
    no_cuda = None if cuda else "no CUDA device (torch.cuda.is_available() is False)"
    mods = info.get("modules", {})
    missing = [m for m in ("detectron2", "d2common.projects") if not mods.get(m, {}).get("ok")]
    no_d2 = f"cannot import {', '.join(missing)}" if missing else None
    steps = []

    files = op_test_files()
    junit = out / "op_tests.xml"
    if cuda:
        # The CPU parametrisations already run in `make test`; here only the CUDA ones (and the
        # tests without a device parameter) run.
        cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not cpu"]
        steps.append(Step("op_tests", cmd + ["--junitxml", str(junit)] + files, 240, junit=junit))
    else:
        cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only"] + files
        steps.append(Step("op_tests_collect", cmd, 120))

    bench = out / "benchmarks"
    nl_json, grm_json, icm_json = (bench / f"{n}.json" for n in ("nonlocal", "grm", "icm"))
    nl_cmd = [py, "tools/benchmark_nonlocal.py", "--device", "cuda", "--batch", "2", "--sdpa"]
    nl_cmd += ["--dtypes", "fp32", "bf16", "--repeat", "2", "--json", str(nl_json)]
    steps.append(Step("bench_nonlocal", nl_cmd, 150, needs=no_cuda, json_out=nl_json))
    # The Gaussian form through SDPA on zero-padded values, against the symmetric tile kernel that
    # `auto` picks (bench_nonlocal's gaussian rows): which one `auto` should take on CUDA.
    gauss_json = bench / "gaussian_sdpa.json"
    gauss_cmd = [py, "tools/benchmark_nonlocal.py", "--device", "cuda", "--batch", "2"]
    gauss_cmd += ["--forms", "gaussian", "--stages", "res2", "res3", "res4", "--backend", "sdpa"]
    gauss_cmd += ["--dtypes", "fp32", "bf16", "--repeat", "2", "--json", str(gauss_json)]
    steps.append(Step("bench_gaussian_sdpa", gauss_cmd, 120, needs=no_cuda, json_out=gauss_json))
    # The wNL paper config's training step against the same model without blocks (FrozenBN as in
    # the paper; lr 0 keeps the untrained weights finite over the few timed steps).
    step_json = bench / "wnl_step.json"
    step_cmd = [py, "tools/benchmark_nonlocal.py", "--skip-blocks", "--device", "cuda"]
    step_cmd += ["--train-steps", "5", "--json", str(step_json)]
    step_cmd += ["--train-step", PAPER_RUNS["LowLightNL"][0], "--train-opts"]
    step_cmd += ["DATASETS.TRAIN", "('lowlight_nl_toy_train',)", "MODEL.WEIGHTS", ""]
    step_cmd += ["MODEL.ROI_HEADS.NUM_CLASSES", "3", "SOLVER.IMS_PER_BATCH", "2"]
    step_cmd += ["SOLVER.BASE_LR", "0.0", "DATALOADER.NUM_WORKERS", "2"]
    steps.append(Step("bench_wnl_step", step_cmd, 150, needs=no_cuda or no_d2, json_out=step_json))
    grm_cmd = [py, "tools/benchmark_grm.py", "--device", "cuda", "--json", str(grm_json)]
    grm_cmd += ["--config-file", "configs/GRMNet/grmnet_R50_FPN_270k_sketchyscene.yaml"]
    # The toy datasets give the vocabulary (the paper config's is SketchyScene's, not on the host).
    grm_cmd += ["MODEL.WEIGHTS", "", "DATASETS.TRAIN", "('grmnet_toy_train',)"]
    grm_cmd += ["DATASETS.TEST", "('grmnet_toy_val',)"]
    steps.append(Step("bench_grm", grm_cmd, 120, needs=no_cuda or no_d2, json_out=grm_json))
    icm_cmd = [py, "tools/benchmark_icm.py", "--device", "cuda", "--json", str(icm_json)]
    steps.append(Step("bench_icm", icm_cmd, 120, needs=no_cuda or no_d2, json_out=icm_json))

    cpu_train = not cuda and args.cpu_iters > 0
    train_skip = None if (cuda or cpu_train) else no_cuda
    iters = args.iters if cuda else args.cpu_iters
    device_opts = ["MODEL.DEVICE", "cuda", "SOLVER.AMP.ENABLED", "True"] if cuda else []
    device_opts = device_opts or ["MODEL.DEVICE", "cpu", "SOLVER.AMP.ENABLED", "False"]
    # On the CPU GRMNet's paper config evaluates its 197 toy queries at about 0.45 s each.
    train_limit, eval_limit = (150, 90) if cuda else (300, 300)
    for project in args.projects:
        config, opts = PAPER_RUNS[project]
        run_dir = out / "train" / project
        opts = list(opts) + COMMON_TRAIN_OPTS + device_opts
        opts += ["SOLVER.MAX_ITER", str(iters), "OUTPUT_DIR", str(run_dir)]
        train = [py, "tools/train_net.py", "--config-file", config] + opts
        steps.append(Step(f"train_{project}", train, train_limit, needs=train_skip or no_d2))
        evaluate = [py, "tools/train_net.py", "--config-file", config, "--eval-only"] + opts
        evaluate += ["MODEL.WEIGHTS", str(run_dir / "model_final.pth")]
        steps.append(
            Step(
                f"eval_{project}",
                evaluate,
                eval_limit,
                needs=train_skip or no_d2,
                after=f"train_{project}",
            )
        )

    nccl_dir = out / "nccl"
    nccl = [py, "tools/train_net.py", "--config-file", "configs/LowLightNL/demo.yaml"]
    nccl += ["--num-gpus", "2", "MODEL.DEVICE", "cuda", "SOLVER.AMP.ENABLED", "True"]
    nccl += ["SOLVER.MAX_ITER", "10", "SOLVER.IMS_PER_BATCH", "4", "OUTPUT_DIR", str(nccl_dir)]
    nccl_skip = no_cuda or (None if gpus >= 2 else f"{gpus} GPU(s): the NCCL run needs 2")
    steps.append(Step("nccl", nccl, 150, needs=nccl_skip or no_d2))
    if args.only:
        steps = [s for s in steps if any(s.name.startswith(o) for o in args.only)]
    return steps


def run_step(step: Step, env: Dict[str, str], log_dir: Path, time_left: float, done: dict):
    """Runs one step (or skips it); returns its report entry. Never raises for the step's sake."""
    entry = {"name": step.name, "command": " ".join(step.cmd)}
    if step.needs:
        return {**entry, "status": "skipped", "message": step.needs}
    if step.after and done.get(step.after) != "passed":
        return {**entry, "status": "skipped", "message": f"{step.after} did not pass"}
    if time_left < 5:
        return {**entry, "status": "skipped", "message": "the time budget is spent"}
    timeout = min(step.timeout_s, time_left)
    log_path = log_dir / f"{step.name}.log"
    for path in (step.json_out, step.junit):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
    start = time.time()
    with open(log_path, "w") as log:
        log.write(f"$ {entry['command']}\n")
        log.flush()
        proc = subprocess.Popen(
            step.cmd,
            cwd=REPO,
            env={**env, **step.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout ends its workers too
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            returncode = None
    entry.update(seconds=round(time.time() - start, 1), log=str(log_path))
    if returncode is None:
        entry.update(status="timeout", message=f"killed after {timeout:.0f} s")
    elif returncode != 0:
        entry.update(status="failed", message=f"exit code {returncode}")
    else:
        entry.update(status="passed", message="")
    if returncode != 0:
        entry["log_tail"] = log_path.read_text(errors="replace").splitlines()[-15:]
    if step.json_out is not None and step.json_out.exists():
        entry["results"] = json.loads(step.json_out.read_text())
    if step.junit is not None and step.junit.exists():
        entry["tests"] = junit_counts(step.junit)
        entry["message"] = (entry["message"] + " " + format_counts(entry["tests"])).strip()
    if step.name == "op_tests_collect" and returncode == 0:
        collected = [ln for ln in log_path.read_text().splitlines() if "tests collected" in ln]
        entry["message"] = "collected only (no CUDA): " + (collected[-1] if collected else "")
    return entry


def junit_counts(path: Path) -> dict:
    """Passed / failed / skipped counts of a pytest JUnit XML, in total and for CUDA cases."""
    counts = {"passed": 0, "failed": 0, "skipped": 0, "cuda_passed": 0}
    for case in ET.parse(path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        status = (
            "failed"
            if tags & {"failure", "error"}
            else "skipped" if "skipped" in tags else "passed"
        )
        counts[status] += 1
        if status == "passed" and "cuda" in case.get("name", ""):
            counts["cuda_passed"] += 1
    return counts


def format_counts(counts: dict) -> str:
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())


def summarise(entry: dict) -> str:
    """A one-line digest of a benchmark's JSON for the markdown report."""
    results = entry.get("results")
    if not results:
        return ""
    if entry["name"] in ("bench_nonlocal", "bench_gaussian_sdpa"):
        mode = "embedded_gaussian" if entry["name"] == "bench_nonlocal" else "gaussian"
        parts = []
        for row in results.get("blocks", []):
            if row.get("mode") != mode or "error" in row:
                continue
            ratio = row.get("efficient_over_sdpa")
            floor = row.get("floor_over_sdpa")
            floor = f" (FLOP floor {floor:.2f}x)" if ratio and floor else ""
            ratio = f", {ratio:.2f}x SDPA{floor}" if ratio else ""
            parts.append(
                f"{row['stage']} {row['dtype']}: {1e3 * row['efficient_s']:.1f} ms, "
                f"{row['efficient_peak_mb']:.0f} MB{ratio}"
            )
        errors = sum("error" in row for row in results.get("blocks", []))
        return "; ".join(parts) + (f"; {errors} rows failed" if errors else "")
    if entry["name"] == "bench_wnl_step" and "train_step_cuda" in results:
        step = results["train_step_cuda"]
        flops = f" (FLOP ratio {step['flop_ratio']:.2f})" if "flop_ratio" in step else ""
        return (
            f"wNL step {1e3 * step['wnl']:.0f} ms, plain {1e3 * step['plain']:.0f} ms, "
            f"ratio {step['ratio']:.2f}{flops}"
        )
    if entry["name"] == "bench_grm" and "train_step" in results:
        step = results["train_step"]
        share = 1 - step["without_grm_ms"] / step["grmnet_ms"]
        text = f"step {step['grmnet_ms']:.0f} ms, GRM share {100 * share:.1f}%"
        if "op_in_step_share" in step:
            text += (
                f" (wider heads {100 * step['heads_share']:.1f}%, the op timed in the step "
                f"{100 * step['op_in_step_share']:.1f}%; FLOP share "
                f"{100 * step['flop_share']:.1f}%)"
            )
        return text
    if entry["name"] == "bench_icm":
        step = results.get("devices", {}).get("cuda", {}).get("step")
        if step:
            share = step["icm_share_of_loss_timing"]
            text = f"step {1e3 * step['step_with_icm_s']:.0f} ms, ICM share {100 * share:.1f}%"
            rows = results["devices"]["cuda"].get("loss", [])
            layouts = next((r["layouts"] for r in rows if r["M"] == 20 and "layouts" in r), None)
            if layouts:
                text += "; M = 20 fwd + bwd: " + ", ".join(
                    f"{name} {1e3 * v['fwd_bwd_s']:.1f} ms ({v['dispatched_ops']} ops)"
                    for name, v in layouts.items()
                )
            return text
    return ""


def write_reports(report: dict, out: Path):
    """report.json (everything) and report.md (a table of the steps)."""
    (out / "report.json").write_text(json.dumps(report, indent=2))
    env = report["environment"]
    gpus = ", ".join(env.get("gpus", [])) or "none"
    lines = [
        "# GPU check",
        "",
        f"- host: {report['host']}; Python {env.get('python')}; torch {env.get('torch')} "
        f"(CUDA build {env.get('torch_cuda_build')}); driver {env.get('driver') or 'none'}",
        f"- GPUs: {gpus}",
        f"- started {report['started']}, {report['seconds']:.0f} s of a {report['budget_s']} s "
        f"budget; result: **{report['result']}**",
        "",
        "| step | status | time (s) | notes |",
        "| --- | --- | --- | --- |",
    ]
    for entry in report["steps"]:
        notes = "; ".join(x for x in (entry.get("message", ""), summarise(entry)) if x)
        seconds = entry.get("seconds")
        lines.append(
            f"| {entry['name']} | {entry['status']} | "
            f"{'-' if seconds is None else f'{seconds:.0f}'} | {notes.replace('|', '/')} |"
        )
    failed = [m for m, v in env.get("modules", {}).items() if not v["ok"]]
    required = [m for m in failed if m not in OPTIONAL_MODULES]
    if required:
        lines += ["", "Imports that failed: " + ", ".join(required)]
    if set(failed) & OPTIONAL_MODULES:
        lines += ["", "Not compiled (optional): detectron2._C; torchvision's ops stand in for it"]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default=str(REPO / "output" / "gpu_check"))
    parser.add_argument("--budget-s", type=float, default=480, help="whole run (default 8 min)")
    parser.add_argument("--iters", type=int, default=20, help="training iterations on CUDA")
    parser.add_argument(
        "--cpu-iters", type=int, default=0, help="without CUDA: run the trainings on the CPU"
    )
    parser.add_argument("--projects", nargs="+", default=list(PAPER_RUNS), choices=PAPER_RUNS)
    parser.add_argument("--only", nargs="+", help="run only the steps whose names start so")
    parser.add_argument("--bundle", help="folder made by tools/pack_offline_bundle.py")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    out = Path(args.output_dir).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    site = None
    if args.bundle:
        sys.path.insert(0, str(REPO / "tools"))
        from pack_offline_bundle import unpack

        site = out / "site"
        try:
            unpack(Path(args.bundle).resolve(), site)
        except (FileNotFoundError, RuntimeError) as error:
            sys.exit(f"error: {error}")
        print(f"[gpu-check] offline bundle {args.bundle} unpacked into {site}", flush=True)
    env = subprocess_env(site)
    info = probe_environment(env)
    report = {
        "host": platform.node(),
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "budget_s": args.budget_s,
        "bundle": str(Path(args.bundle).resolve()) if args.bundle else None,
        "environment": info,
        "steps": [],
    }
    op_failed = [m for m in OP_MODULES if not info["modules"][m]["ok"]]
    env_entry = {
        "name": "environment",
        "status": "failed" if op_failed else "passed",
        "message": f"cannot import {', '.join(op_failed)}" if op_failed else "",
        "seconds": round(time.time() - start, 1),
    }
    if not info.get("cuda_available"):
        print("[gpu-check] no CUDA device here: the CUDA steps are skipped", flush=True)
    report["steps"].append(env_entry)
    done = {}
    for step in plan_steps(args, info, out):
        print(f"[gpu-check] {step.name} ...", flush=True)
        time_left = args.budget_s - (time.time() - start)
        entry = run_step(step, env, out / "logs", time_left, done)
        done[step.name] = entry["status"]
        report["steps"].append(entry)
        seconds = f" in {entry['seconds']:.0f} s" if "seconds" in entry else ""
        print(f"[gpu-check] {step.name}: {entry['status']}{seconds} {entry['message']}", flush=True)
    bad = [e["name"] for e in report["steps"] if e["status"] in ("failed", "timeout")]
    report["seconds"] = time.time() - start
    report["result"] = "failed: " + ", ".join(bad) if bad else "passed"
    write_reports(report, out)
    print(f"[gpu-check] {report['result']}; report: {out / 'report.md'}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
