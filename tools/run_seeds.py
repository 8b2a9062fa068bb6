#!/usr/bin/env python
"""Multi-seed comparisons: runs a set of configs ("arms") over fixed seeds and reports, per arm
and metric, the mean, the sample std and the runs, and per pair of arms Welch's t-test.

Each run is ``tools/train_net.py ... SEED <seed>`` (through ``run_demo.run_one``) in its own
folder ``<output-dir>/<study>/<arm>/seed_<seed>/``; a finished run leaves ``run.json`` (seed, time,
metrics) there and is skipped when the study is run again, so an interrupted study continues
where it stopped. ``summary.json`` and ``summary.md`` are rewritten after every run.

    python tools/run_seeds.py --study configs/FlashAmbient/studies/demo.yaml
    python tools/run_seeds.py --name lr --seeds 0 1 2 3 \\
        --arm "lr 1e-3" configs/ICMDepth/demo.yaml SOLVER.BASE_LR 0.001 \\
        --arm "lr 3e-4" configs/ICMDepth/demo.yaml SOLVER.BASE_LR 0.0003

A study file (YAML or JSON) names the arms; ``seeds``, ``metrics`` and ``alpha`` are optional:

    title: "FlashAmbient demo: cGAN vs identity vs a smaller adversarial weight"
    seeds: [0, 1, 2]
    metrics: [flash_ambient/PSNR]
    arms:
      - {label: "cGAN", config: configs/FlashAmbient/demo.yaml}
      - {label: "identity", config: configs/FlashAmbient/demo_identity.yaml, eval_only: true}
      - label: "cGAN, lambda 0.001"
        config: configs/FlashAmbient/demo.yaml
        opts: {MODEL.FLASH_AMBIENT.ADV_WEIGHT: 0.001}

Statistics and reports: ``seed_stats.py``. Exit status 1 when a run failed (rerun to retry
only those), 2 for a bad study file or command line.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tools below, by name
import run_demo  # noqa: E402
import seed_stats  # noqa: E402

REPO = run_demo.REPO
DEFAULT_SEEDS = (0, 1, 2)
RESULT_FILES = ("eval_results.json", "eval_only_results.json")
STUDY_KEYS = {"title", "seeds", "metrics", "alpha", "arms"}
ARM_KEYS = {"label", "config", "opts", "eval_only"}


@dataclass
class Arm:
    """One configuration of a study: a config file, its overrides, and whether it only evaluates
    (``--eval-only``, e.g. a baseline without weights)."""

    label: str
    config: str
    opts: List[str] = field(default_factory=list)
    eval_only: bool = False


@dataclass
class Study:
    name: str  # folder under --output-dir
    title: str
    arms: List[Arm]
    seeds: List[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    metrics: Optional[List[str]] = None  # None: every metric all finished runs report
    alpha: float = 0.05


class StudyError(ValueError):
    """A study file or command line that cannot be run."""


def _opts_list(opts, where: str) -> List[str]:
    if opts is None:
        return []
    if isinstance(opts, dict):
        opts = [x for kv in opts.items() for x in kv]
    if not isinstance(opts, list) or len(opts) % 2:
        raise StudyError(f"{where}: opts must be a KEY: VALUE mapping or a [KEY, VALUE, ...] list")
    opts = [_yaml_str(x) for x in opts]
    if "SEED" in opts[::2]:
        raise StudyError(f"{where}: SEED is set by the study's seeds, not by an arm's opts")
    return opts


def _yaml_str(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_yaml_str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def check_study(study: Study, where: str) -> Study:
    """Validates a study (arms, unique labels, existing configs, integer seeds); returns it."""
    if not study.arms:
        raise StudyError(f"{where}: no arms")
    labels = [arm.label for arm in study.arms]
    duplicates = sorted({x for x in labels if labels.count(x) > 1})
    if duplicates:
        raise StudyError(f"{where}: duplicate arm labels {duplicates}")
    slugs = [run_demo.slug(x) for x in labels]
    if len(set(slugs)) != len(slugs):
        raise StudyError(f"{where}: arm labels {labels} map to the same folder names {slugs}")
    for arm in study.arms:
        if not (REPO / arm.config).is_file():
            raise StudyError(f"{where}: arm '{arm.label}': config file {arm.config} not found")
    if not study.seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in study.seeds
    ):
        raise StudyError(f"{where}: seeds must be a non-empty list of integers, got {study.seeds}")
    if len(set(study.seeds)) != len(study.seeds) or min(study.seeds) < 0:
        raise StudyError(f"{where}: seeds must be distinct and non-negative, got {study.seeds}")
    if not 0 < study.alpha < 1:
        raise StudyError(f"{where}: alpha must be in (0, 1), got {study.alpha}")
    return study


def study_name(path: Path) -> str:
    """``<Project>/<stem>`` for ``configs/<Project>/studies/<stem>.yaml``, else the file's stem."""
    path = Path(path)
    if path.parent.name == "studies":
        return f"{path.parent.parent.name}/{path.stem}"
    return path.stem


def load_study(path) -> Study:
    """Reads a YAML or JSON study file; raises StudyError naming the file on bad content."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise StudyError(f"{where}: cannot read the study file ({e})") from e
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise StudyError(f"{where}: not valid {path.suffix[1:].upper() or 'YAML'} ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("arms"), list):
        raise StudyError(f"{where}: expected a mapping with an 'arms' list")
    unknown = set(data) - STUDY_KEYS
    if unknown:
        raise StudyError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(STUDY_KEYS)})")
    arms = []
    for i, entry in enumerate(data["arms"]):
        arm_where = f"{where}: arm {i}"
        if not isinstance(entry, dict) or "label" not in entry or "config" not in entry:
            raise StudyError(f"{arm_where}: needs 'label' and 'config'")
        unknown = set(entry) - ARM_KEYS
        if unknown:
            raise StudyError(f"{arm_where}: unknown keys {sorted(unknown)}")
        opts = _opts_list(entry.get("opts"), arm_where)
        arms.append(
            Arm(str(entry["label"]), str(entry["config"]), opts, bool(entry.get("eval_only")))
        )
    metrics = data.get("metrics")
    if metrics is not None and not (isinstance(metrics, list) and metrics):
        raise StudyError(f"{where}: metrics must be a non-empty list of result keys")
    seeds, alpha = data.get("seeds", list(DEFAULT_SEEDS)), data.get("alpha", 0.05)
    if not isinstance(seeds, list):
        raise StudyError(f"{where}: seeds must be a list of integers, got {seeds!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise StudyError(f"{where}: alpha must be a number, got {alpha!r}")
    study = Study(
        name=study_name(path),
        title=str(data.get("title", study_name(path))),
        arms=arms,
        seeds=seeds,
        metrics=[str(m) for m in metrics] if metrics else None,
        alpha=float(alpha),
    )
    return check_study(study, where)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", nargs="+", default=[], help="study files (YAML or JSON)")
    parser.add_argument(
        "--arm",
        nargs="+",
        action="append",
        default=[],
        metavar="ITEM",
        help="LABEL CONFIG [KEY VALUE ...]: a training arm (repeat --arm for every arm)",
    )
    parser.add_argument(
        "--eval-arm",
        nargs="+",
        action="append",
        default=[],
        metavar="ITEM",
        help="LABEL CONFIG [KEY VALUE ...]: an arm run with --eval-only (no training)",
    )
    parser.add_argument("--name", default="cli", help="output folder of the command-line arms")
    parser.add_argument(
        "--seeds", nargs="+", type=int, metavar="S", help="seeds (default: the study's, or 0 1 2)"
    )
    parser.add_argument(
        "--num-seeds", type=int, metavar="N", help="seeds 0 .. N-1 (instead of --seeds)"
    )
    parser.add_argument(
        "--metrics", nargs="+", metavar="KEY", help="result keys to report (default: the study's)"
    )
    parser.add_argument("--alpha", type=float, help="significance level (default: 0.05)")
    parser.add_argument("--output-dir", default="output/seeds", help="root of the study folders")
    parser.add_argument(
        "--opts", nargs="+", default=[], metavar="KEY VALUE", help="overrides for every run"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the runs and which are already done, run none"
    )
    args = parser.parse_args(argv)
    if args.seeds and args.num_seeds:
        parser.error("give --seeds or --num-seeds, not both")
    if args.num_seeds is not None and args.num_seeds < 1:
        parser.error("--num-seeds must be at least 1")
    if len(args.opts) % 2:
        parser.error("--opts takes KEY VALUE pairs")
    if not args.study and not args.arm and not args.eval_arm:
        parser.error("give --study files or --arm / --eval-arm")
    return args


def studies_from_args(args) -> List[Study]:
    """The studies named by the command line, with --seeds / --metrics / --alpha / --opts
    applied."""
    studies = [load_study(path) for path in args.study]
    cli_arms = []
    for values, eval_only in [(v, False) for v in args.arm] + [(v, True) for v in args.eval_arm]:
        if len(values) < 2:
            raise StudyError(f"--arm {values}: needs LABEL CONFIG [KEY VALUE ...]")
        opts = _opts_list(values[2:], f"--arm {values[0]!r}")
        cli_arms.append(Arm(values[0], values[1], opts, eval_only))
    if cli_arms:
        studies.append(Study(name=args.name, title=args.name, arms=cli_arms))
    if args.opts:
        common = _opts_list(list(args.opts), "--opts")
    for study in studies:
        if args.seeds or args.num_seeds:
            study.seeds = list(args.seeds or range(args.num_seeds))
        if args.metrics:
            study.metrics = list(args.metrics)
        if args.alpha is not None:
            study.alpha = args.alpha
        if args.opts:
            study.arms = [Arm(a.label, a.config, a.opts + common, a.eval_only) for a in study.arms]
        check_study(study, f"study {study.name}")
    names = [s.name for s in studies]
    if len(set(names)) != len(names):
        raise StudyError(f"two studies would share an output folder: {names}")
    return studies


def run_dir(output_dir: Path, study: Study, arm: Arm, seed: int) -> Path:
    return Path(output_dir) / study.name / run_demo.slug(arm.label) / f"seed_{seed}"


def config_digest(config_file: str) -> str:
    """sha256 of the texts of ``config_file`` and of every ``_BASE_`` it inherits from, so that
    an edited config is not mistaken for the one a finished run used."""
    digest = hashlib.sha256()
    path, seen = (REPO / config_file).resolve(), set()
    while path not in seen:
        seen.add(path)
        text = path.read_text()
        digest.update(str(path.relative_to(REPO) if path.is_relative_to(REPO) else path).encode())
        digest.update(text.encode())
        try:
            base = (yaml.safe_load(text) or {}).get("_BASE_")
        except yaml.YAMLError:
            base = None
        if not isinstance(base, str):
            break
        path = (path.parent / Path(base).expanduser()).resolve()
    return digest.hexdigest()[:16]


def identity(arm: Arm, seed: int) -> dict:
    """What a finished run must match to be reused: config (name and content), overrides, mode
    and seed."""
    return {
        "config": arm.config,
        "config_digest": config_digest(arm.config),
        "opts": list(arm.opts),
        "eval_only": arm.eval_only,
        "seed": seed,
    }


def finished_run(folder: Path, arm: Arm, seed: int) -> Optional[dict]:
    """The record of a finished run in ``folder``, or None if it has not finished.

    Raises StudyError when ``folder`` holds a finished run of a different config, overrides or
    seed: reusing it would report another experiment under this arm's label.
    """
    record_file = Path(folder) / "run.json"
    if not record_file.exists():
        return None
    try:
        record = json.loads(record_file.read_text())
    except ValueError as e:
        raise StudyError(f"{record_file}: unreadable run record ({e}); delete it to rerun") from e
    expected = identity(arm, seed)
    changed = [k for k in expected if record.get(k) != expected[k]]
    if changed:
        what = ", ".join(f"{k} {record.get(k)!r} (now {expected[k]!r})" for k in changed)
        raise StudyError(
            f"{record_file}: this finished run had {what}; delete {Path(folder)} to rerun it, or "
            "choose another --output-dir"
        )
    return record


def config_seed(folder: Path) -> Optional[int]:
    """SEED as written by detectron2's default_setup into ``folder/config.yaml``."""
    path = Path(folder) / "config.yaml"
    if not path.exists():
        return None
    match = re.search(r"^SEED: (-?\d+)$", path.read_text(), flags=re.M)
    return int(match.group(1)) if match else None


def execute(folder: Path, arm: Arm, seed: int, runner=run_demo.run_one) -> dict:
    """Runs one arm at one seed in ``folder``; returns its record (written to run.json when the
    run succeeded)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:  # a stale result of an interrupted attempt must not be read back
        (folder / name).unlink(missing_ok=True)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    load_1min = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    opts = list(arm.opts) + ["SEED", str(seed)]
    results, seconds = runner(arm.config, opts, folder, arm.eval_only)
    record = {
        "label": arm.label,
        **identity(arm, seed),
        "started": started,
        "git_commit": _git_commit(),
        "seconds": round(seconds, 2),
        # The time of a run on a shared machine means little without the load it ran under.
        "host": platform.node(),
        "load_1min_at_start": load_1min,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "1 (run_demo's default)"),
        "command": "tools/train_net.py --config-file "
        + arm.config
        + (" --eval-only" if arm.eval_only else "")
        + f" OUTPUT_DIR {folder} "
        + " ".join(opts),
    }
    if results is None:
        return {**record, "failed": True, "log": str(folder / "stdout.txt")}
    written_seed = config_seed(folder)
    if written_seed is not None and written_seed != seed:
        return {**record, "failed": True, "log": f"config.yaml has SEED {written_seed}"}
    record["metrics"] = results
    tmp = folder / "run.json.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(folder / "run.json")
    return record


def _git_commit() -> Optional[str]:
    """HEAD of the repository, with "+changes" when the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def report_metrics(study: Study, arms_runs: List[dict]) -> List[str]:
    """The study's metrics, or the numeric keys that every finished run reports, sorted."""
    if study.metrics:
        return study.metrics
    keys = None
    for arm in arms_runs:
        for run in arm["runs"]:
            if not run.get("failed"):
                names = {k for k, v in run["metrics"].items() if isinstance(v, (int, float))}
                keys = names if keys is None else keys & names
    return sorted(keys or [])


def run_study(study: Study, output_dir: Path, runner=run_demo.run_one, dry_run=False, log=print):
    """Runs (or reuses) every arm x seed of ``study``; writes and returns the summary.

    Returns:
        (dict summary or None for a dry run, int number of failed runs)
    """
    output_dir = Path(output_dir)
    total = len(study.arms) * len(study.seeds)
    # Checks every finished run against its arm before anything runs.
    pending = [
        (seed, i)
        for seed in study.seeds
        for i, arm in enumerate(study.arms)
        if finished_run(run_dir(output_dir, study, arm, seed), arm, seed) is None
    ]
    log(f"[seeds] {study.name}: {total} runs, {total - len(pending)} finished before", flush=True)
    arms_runs = [{"label": arm.label, "runs": []} for arm in study.arms]
    done, failed = 0, 0
    for seed in study.seeds:  # seed-major: an interrupted study has every arm at the first seeds
        for index, (arm, arm_runs) in enumerate(zip(study.arms, arms_runs)):
            done += 1
            folder = run_dir(output_dir, study, arm, seed)
            where = f"[seeds] {study.name} ({done}/{total}) {arm.label}, seed {seed}"
            record = finished_run(folder, arm, seed)
            if record is not None:
                log(f"{where}: finished before ({record['seconds']:.0f} s), skipped", flush=True)
            elif dry_run:
                log(f"{where}: to run in {folder}", flush=True)
                continue
            else:
                log(f"{where}: running in {folder} ...", flush=True)
                record = execute(folder, arm, seed, runner)
                pending.remove((seed, index))
                arm_runs["runs"].append(record)
                eta = _remaining_seconds(pending, arms_runs)
                status = f"FAILED (see {record['log']})" if record.get("failed") else "ok"
                log(
                    f"{where}: {status} in {record['seconds']:.0f} s; "
                    f"about {eta / 60:.0f} min left in this study",
                    flush=True,
                )
                failed += bool(record.get("failed"))
                _write(study, output_dir, arms_runs)
                continue
            arm_runs["runs"].append(record)
    if dry_run:
        return None, 0
    summary, markdown = _write(study, output_dir, arms_runs)
    log("\n" + markdown, flush=True)
    log(f"Runs, logs and summary.{{json,md}}: {output_dir / study.name}", flush=True)
    return summary, failed


def _remaining_seconds(pending, arms_runs) -> float:
    """Estimated seconds of the pending (seed, arm index) runs: each arm's mean time so far, or
    the mean over all arms for an arm with no finished run yet."""
    times = [[r["seconds"] for r in arm["runs"] if not r.get("failed")] for arm in arms_runs]
    every = [t for arm_times in times for t in arm_times]
    if not every:
        return 0.0
    overall = sum(every) / len(every)
    return sum(sum(times[i]) / len(times[i]) if times[i] else overall for _, i in pending)


def _write(study: Study, output_dir: Path, arms_runs: List[dict]):
    summary = seed_stats.summarize(arms_runs, report_metrics(study, arms_runs), study.alpha)
    summary = {
        "study": study.name,
        "title": study.title,
        "seeds": study.seeds,
        "arms_config": [
            {"label": a.label, "config": a.config, "opts": a.opts, "eval_only": a.eval_only}
            for a in study.arms
        ],
        **summary,
    }
    markdown = seed_stats.write_reports(summary, Path(output_dir) / study.name, study.title)
    return summary, markdown


def main(argv=None, runner=run_demo.run_one) -> int:
    args = parse_args(argv)
    output_dir = (REPO / args.output_dir).resolve()
    try:
        studies = studies_from_args(args)
        failed = 0
        for study in studies:
            failed += run_study(study, output_dir, runner=runner, dry_run=args.dry_run)[1]
    except StudyError as e:
        print(f"run_seeds: error: {e}", file=sys.stderr)
        return 2
    if failed:
        print(f"{failed} run(s) failed; rerun the same command to retry only those.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
