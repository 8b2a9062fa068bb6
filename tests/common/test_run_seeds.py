"""tools/run_seeds.py and tools/seed_stats.py: Welch statistics against scipy and closed forms,
the reports, study files, resuming, and one real two-seed study of a tiny arm."""

import importlib
import importlib.util
import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from d2common.projects import PROJECTS, available_projects
from d2common.testing import load_tool, repo_root

run_seeds = load_tool("run_seeds")
seed_stats = run_seeds.seed_stats


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    "n_a,n_b,scale_b,shift", [(3, 3, 1.0, 0.5), (3, 5, 4.0, 2.0), (7, 2, 0.1, -1)]
)
def test_welch_matches_scipy(n_a, n_b, scale_b, shift):
    rng = np.random.default_rng(n_a * 10 + n_b)
    a = rng.normal(0.0, 1.0, n_a).tolist()
    b = rng.normal(shift, scale_b, n_b).tolist()
    ours = seed_stats.welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert ours["t"] == pytest.approx(ref.statistic, rel=1e-10)
    assert ours["p"] == pytest.approx(ref.pvalue, rel=1e-8)
    assert ours["diff"] == pytest.approx(np.mean(a) - np.mean(b), rel=1e-12)
    if hasattr(ref, "df"):  # scipy >= 1.11 reports the Welch-Satterthwaite degrees of freedom
        assert ours["df"] == pytest.approx(ref.df, rel=1e-10)


def test_welch_hand_computed_case():
    # Two runs per arm, both variances 2: se^2 = 1 + 1, t = -5 / sqrt(2), df = 4 / (1 + 1) = 2.
    # With 2 degrees of freedom, P(|T| > t) = 1 - t / sqrt(2 + t^2) in closed form.
    out = seed_stats.welch([0.0, 2.0], [5.0, 7.0])
    t = -5.0 / math.sqrt(2.0)
    assert out["diff"] == -5.0
    assert out["t"] == pytest.approx(t, rel=1e-12)
    assert out["df"] == pytest.approx(2.0, rel=1e-12)
    assert out["p"] == pytest.approx(1.0 - abs(t) / math.sqrt(2.0 + t * t), rel=1e-9)
    assert seed_stats.verdict(out["p"]) == seed_stats.WITHIN  # p = 0.0715
    assert seed_stats.verdict(out["p"], alpha=0.1) == seed_stats.EXCEEDS


def test_mean_std_is_the_sample_std():
    values = [1.0, 4.0, 4.0, 7.5]
    mean, std = seed_stats.mean_std(values)
    assert mean == pytest.approx(np.mean(values))
    assert std == pytest.approx(np.std(values, ddof=1))
    assert seed_stats.mean_std([3.0]) == (3.0, None)
    assert seed_stats.mean_std([]) == (None, None)


def test_degenerate_cases():
    # No spread on either side: any gap exceeds it, no gap does not.
    assert seed_stats.welch([1.0, 1.0], [2.0, 2.0, 2.0])["p"] == 0.0
    assert seed_stats.welch([1.0, 1.0], [1.0, 1.0])["p"] == 1.0
    # One spread-free side is an ordinary Welch test (the identity baseline of a study).
    with warnings.catch_warnings():  # scipy warns about the constant sample
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = stats.ttest_ind([1.0, 2.0, 4.0], [3.0, 3.0, 3.0], equal_var=False)
    assert seed_stats.welch([1.0, 2.0, 4.0], [3.0, 3.0, 3.0])["p"] == pytest.approx(ref.pvalue)
    single = seed_stats.welch([1.0], [2.0, 3.0])
    assert single["t"] is None and single["p"] is None and single["diff"] == -1.5
    assert seed_stats.verdict(None) == seed_stats.UNTESTED
    # Failed runs (None) and undefined metrics (NaN) are left out of the statistics.
    assert seed_stats.finite([1.0, None, float("nan"), 2.0, float("inf")]) == [1.0, 2.0]


def _arms():
    return [
        {
            "label": "ours",
            "runs": [
                {"seed": 0, "seconds": 10.0, "metrics": {"m": 2.0, "n": float("nan")}},
                {"seed": 1, "seconds": 12.0, "metrics": {"m": 2.2, "n": 1.0}},
                {"seed": 2, "failed": True},
            ],
        },
        {
            "label": "base",
            "runs": [
                {"seed": s, "seconds": 5.0, "metrics": {"m": m, "n": 1.0}}
                for s, m in [(0, 1.0), (1, 1.1), (2, 0.9)]
            ],
        },
    ]


def test_summary_reports_runs_means_and_pairs(tmp_path):
    summary = seed_stats.summarize(_arms(), ["m", "n"], alpha=0.05)
    ours, base = summary["arms"]
    assert ours["ok_runs"] == 2 and ours["failed_seeds"] == [2] and ours["mean_seconds"] == 11.0
    assert ours["metrics"]["m"]["mean"] == pytest.approx(2.1)
    assert ours["metrics"]["m"]["std"] == pytest.approx(np.std([2.0, 2.2], ddof=1))
    assert ours["metrics"]["m"]["runs"] == {"0": 2.0, "1": 2.2}
    assert ours["metrics"]["n"]["n"] == 1 and ours["metrics"]["n"]["std"] is None
    pair_m, pair_n = summary["pairs"]
    ref = stats.ttest_ind([2.0, 2.2], [1.0, 1.1, 0.9], equal_var=False)
    assert (pair_m["a"], pair_m["b"], pair_m["metric"]) == ("ours", "base", "m")
    assert pair_m["p"] == pytest.approx(ref.pvalue) and ref.pvalue < 0.05
    assert pair_m["verdict"] == seed_stats.EXCEEDS
    assert pair_n["verdict"] == seed_stats.UNTESTED
    assert "p < 0.05" in summary["rule"] and "ddof=1" in summary["rule"]

    markdown = seed_stats.write_reports(summary, tmp_path, "A study")
    assert (tmp_path / "summary.md").read_text() == markdown
    lines = markdown.splitlines()
    assert lines[0] == "### A study"
    assert "| ours | 2 of 3 (failed seeds: [2]) | 11 |" in lines
    assert "| m | ours | 2.1 | 0.1414 | 0: 2, 1: 2.2 |" in lines
    assert "| n | ours | 1 | - | 0: nan, 1: 1 |" in lines
    row = next(x for x in lines if x.startswith("| m | ours | base |"))
    assert row.endswith(f"| {seed_stats.EXCEEDS} |") and "| 1.1 |" in row
    arms = _arms()
    arms[1]["label"] = "a | b"
    assert "| m | a \\| b | 1 |" in seed_stats.to_markdown(seed_stats.summarize(arms, ["m"]))
    # The JSON is strict (NaN written as null) and round-trips the numbers.
    data = json.loads((tmp_path / "summary.json").read_text(), parse_constant=_no_constants)
    assert data["arms"][0]["metrics"]["n"]["runs"]["0"] is None
    assert data["pairs"][0]["p"] == pytest.approx(ref.pvalue)


def _no_constants(name):
    raise AssertionError(f"non-standard JSON constant {name}")


# ---------------------------------------------------------------- study files and arguments


def _write_study(tmp_path, text, name="study.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_study_file_yaml_and_json(tmp_path):
    path = _write_study(
        tmp_path,
        """
title: t
seeds: [3, 4]
metrics: [flash_ambient/PSNR]
arms:
  - {label: a, config: configs/FlashAmbient/demo.yaml}
  - {label: b, config: configs/FlashAmbient/demo.yaml, opts: {SOLVER.MAX_ITER: 5,
     INPUT.FLASH_AMBIENT.RESIZE: [32, 24]}}
  - {label: c, config: configs/FlashAmbient/demo_identity.yaml, eval_only: true}
""",
    )
    study = run_seeds.load_study(path)
    assert study.name == "study" and study.title == "t" and study.seeds == [3, 4]
    assert [a.label for a in study.arms] == ["a", "b", "c"]
    assert study.arms[1].opts == ["SOLVER.MAX_ITER", "5", "INPUT.FLASH_AMBIENT.RESIZE", "(32, 24)"]
    assert study.arms[2].eval_only and not study.arms[0].eval_only
    as_json = {"arms": [{"label": "a", "config": "configs/FlashAmbient/demo.yaml"}]}
    study = run_seeds.load_study(_write_study(tmp_path, json.dumps(as_json), "s.json"))
    assert study.seeds == [0, 1, 2] and study.metrics is None and study.alpha == 0.05


@pytest.mark.parametrize(
    "text,message",
    [
        ("arms: [{label: a, config: configs/nope.yaml}]", "configs/nope.yaml not found"),
        ("arms: [{label: a}]", "needs 'label' and 'config'"),
        ("arms: [{label: a, config: configs/FlashAmbient/demo.yaml, opts: {SEED: 3}}]", "SEED"),
        ("arms: [{label: a, config: configs/FlashAmbient/demo.yaml, opts: [A]}]", "KEY: VALUE"),
        ("arms: [{label: a, config: configs/FlashAmbient/demo.yaml}]\nseed: [1]", "unknown keys"),
        ("arms: [{label: a, config: configs/FlashAmbient/demo.yaml}]\nseeds: [1, 1]", "distinct"),
        ("arms: [{label: a, config: configs/FlashAmbient/demo.yaml}]\nseeds: [a]", "integers"),
        (
            "arms: [{label: a b, config: configs/FlashAmbient/demo.yaml},"
            " {label: a-b, config: configs/FlashAmbient/demo.yaml}]",
            "same folder names",
        ),
        ("arms: [{label: a, config: configs/FlashAmbient/demo.yaml}]\nseeds: 3", "a list"),
        ("arms: [{label: a, config: configs/FlashAmbient/demo.yaml}]\nalpha: x", "a number"),
        ("arms: [{label: a, config: configs/FlashAmbient/demo.yaml}]\nalpha: 1.5", r"\(0, 1\)"),
        ("arms: [}", "not valid YAML"),
        ("arms: []", "no arms"),
    ],
)
def test_bad_study_files_name_the_file(tmp_path, text, message):
    path = _write_study(tmp_path, text)
    with pytest.raises(run_seeds.StudyError, match=message) as info:
        run_seeds.load_study(path)
    assert str(path) in str(info.value)


def test_command_line_arms_and_overrides():
    args = run_seeds.parse_args(
        [
            "--arm", "ours", "configs/ICMDepth/demo.yaml", "SOLVER.MAX_ITER", "10",
            "--eval-arm", "identity", "configs/FlashAmbient/demo_identity.yaml",
            "--num-seeds", "4", "--metrics", "depth/rmse", "--alpha", "0.01",
            "--opts", "MODEL.DEVICE", "cpu", "--name", "mine",
        ]
    )  # fmt: skip
    (study,) = run_seeds.studies_from_args(args)
    assert study.name == "mine" and study.seeds == [0, 1, 2, 3] and study.alpha == 0.01
    assert study.metrics == ["depth/rmse"]
    ours, identity = study.arms
    assert ours.opts == ["SOLVER.MAX_ITER", "10", "MODEL.DEVICE", "cpu"] and not ours.eval_only
    assert identity.eval_only and identity.opts == ["MODEL.DEVICE", "cpu"]
    args = run_seeds.parse_args(
        ["--study", "configs/ICMDepth/studies/demo.yaml", "--seeds", "5", "7"]
    )
    (study,) = run_seeds.studies_from_args(args)
    assert study.name == "ICMDepth/demo" and study.seeds == [5, 7]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--arm", "a", "configs/ICMDepth/demo.yaml", "--seeds", "1", "--num-seeds", "2"],
        ["--arm", "a", "configs/ICMDepth/demo.yaml", "--opts", "SOLVER.MAX_ITER"],
    ],
)
def test_bad_arguments_exit(argv, capsys):
    with pytest.raises(SystemExit) as info:
        run_seeds.parse_args(argv)
    assert info.value.code == 2


def test_study_files_load_and_the_demo_studies_hold_the_demo_runs():
    """Every study file loads; each project's ``demo`` study runs at least every run of
    ``make demo`` (same config, overrides and mode; labels may differ, arms may be added) and
    reports its headline metrics."""
    studies = sorted((repo_root() / "configs").glob("*/studies/*.yaml"))
    assert {p.parent.parent.name for p in studies if p.stem == "demo"} >= {p[0] for p in PROJECTS}
    installed = {p[0]: p[1] for p in available_projects()}
    for path in studies:
        study = run_seeds.load_study(path)
        project = path.parent.parent.name
        if path.stem != "demo" or project not in installed:
            continue
        demo = importlib.import_module(f"{installed[project]}.demo")
        arms = [(a.config, a.opts, a.eval_only) for a in study.arms]
        for run in demo.DEMO_RUNS:
            arm = (run[1], list(run[2]), bool(run[3]) if len(run) > 3 else False)
            assert arm in arms, f"{path} lacks the demo run {run[0]!r}: update the study file"
        missing = set(demo.HEADLINE_METRICS) - set(study.metrics or demo.HEADLINE_METRICS)
        assert not missing, f"{path} does not report {sorted(missing)}"


# ---------------------------------------------------------------- running and resuming


class FakeRunner:
    """Stands in for run_demo.run_one: results depend on arm and seed; some runs can fail."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, config_file, opts, out_dir, eval_only):
        seed = int(opts[opts.index("SEED") + 1])
        self.calls.append((config_file, tuple(opts), seed))
        (out_dir / "config.yaml").write_text(f"OUTPUT_DIR: {out_dir}\nSEED: {seed}\n")
        if (config_file, seed) in self.fail:
            return None, 1.0
        level = 10.0 if "demo.yaml" in config_file else 5.0
        return {"m": level + 0.1 * seed, "other": 1.0}, 2.0


def _study(seeds=(0, 1, 2)):
    arms = [
        run_seeds.Arm("ours", "configs/ICMDepth/demo.yaml"),
        run_seeds.Arm("no icm", "configs/ICMDepth/demo_no_icm.yaml", ["SOLVER.MAX_ITER", "3"]),
    ]
    return run_seeds.Study(name="s", title="S", arms=arms, seeds=list(seeds), metrics=["m"])


def test_finished_runs_are_not_rerun(tmp_path):
    logs = []
    runner = FakeRunner(fail={("configs/ICMDepth/demo.yaml", 1)})
    summary, failed = run_seeds.run_study(_study(), tmp_path, runner, log=_collect(logs))
    assert failed == 1 and len(runner.calls) == 6
    assert ("configs/ICMDepth/demo_no_icm.yaml", ("SOLVER.MAX_ITER", "3", "SEED", "2"), 2) in (
        runner.calls
    )
    record = json.loads((tmp_path / "s/ours/seed_2/run.json").read_text())
    assert record["seed"] == 2 and record["metrics"]["m"] == pytest.approx(10.2)
    assert record["seconds"] == 2.0 and "started" in record and "SEED 2" in record["command"]
    assert {"host", "load_1min_at_start", "omp_num_threads", "git_commit"} <= set(record)
    assert not (tmp_path / "s/ours/seed_1/run.json").exists()
    assert summary["arms"][0]["failed_seeds"] == [1]
    assert any("(1/6) ours, seed 0: running" in line for line in logs)

    # Rerun: only the failed run runs again, the table now has all three seeds.
    runner = FakeRunner()
    summary, failed = run_seeds.run_study(_study(), tmp_path, runner, log=_collect(logs))
    assert failed == 0 and [c[2] for c in runner.calls] == [1]
    assert summary["arms"][0]["metrics"]["m"]["runs"] == {"0": 10.0, "1": 10.1, "2": 10.2}
    assert summary["pairs"][0]["diff"] == pytest.approx(5.0)
    assert json.loads((tmp_path / "s/summary.json").read_text())["seeds"] == [0, 1, 2]
    assert "| m | ours | no icm | 5 |" in (tmp_path / "s/summary.md").read_text()

    # A third pass runs nothing; more seeds run only the new ones.
    runner = FakeRunner()
    run_seeds.run_study(_study(), tmp_path, runner, log=_collect(logs))
    assert runner.calls == []
    run_seeds.run_study(_study(seeds=(0, 1, 2, 3)), tmp_path, runner, log=_collect(logs))
    assert [c[2] for c in runner.calls] == [3, 3]


def test_remaining_time_uses_each_arms_mean():
    arms_runs = [
        {"runs": [{"seconds": 100.0}, {"seconds": 140.0}, {"seconds": 1.0, "failed": True}]},
        {"runs": [{"seconds": 10.0}]},
        {"runs": []},
    ]
    pending = [(2, 0), (2, 1), (2, 2)]
    # 120 for arm 0, 10 for arm 1, and the mean over all finished runs (250 / 3) for arm 2.
    assert run_seeds._remaining_seconds(pending, arms_runs) == pytest.approx(130 + 250 / 3)
    assert run_seeds._remaining_seconds([], arms_runs) == 0.0


def test_a_changed_arm_does_not_reuse_old_runs(tmp_path):
    run_seeds.run_study(_study(seeds=(0,)), tmp_path, FakeRunner(), log=_collect([]))
    changed = _study(seeds=(0,))
    changed.arms[1].opts = ["SOLVER.MAX_ITER", "4"]
    runner = FakeRunner()
    with pytest.raises(run_seeds.StudyError, match=r"this finished run had opts .*\(now"):
        run_seeds.run_study(changed, tmp_path, runner, log=_collect([]))
    assert runner.calls == []  # checked before anything runs


def test_an_edited_base_config_does_not_reuse_old_runs(tmp_path):
    base = tmp_path / "configs" / "base.yaml"
    base.parent.mkdir()
    base.write_text("SOLVER:\n  MAX_ITER: 3\n")
    leaf = base.parent / "leaf.yaml"
    leaf.write_text('_BASE_: "base.yaml"\nSOLVER:\n  BASE_LR: 0.1\n')
    study = run_seeds.Study(
        name="s", title="s", arms=[run_seeds.Arm("a", str(leaf))], seeds=[0], metrics=["m"]
    )
    out = tmp_path / "out"
    run_seeds.run_study(study, out, FakeRunner(), log=_collect([]))
    run_seeds.run_study(study, out, FakeRunner(), log=_collect([]))  # unchanged: reused
    record = json.loads((out / "s/a/seed_0/run.json").read_text())
    assert record["config_digest"] == run_seeds.config_digest(str(leaf))
    base.write_text("SOLVER:\n  MAX_ITER: 4\n")
    with pytest.raises(run_seeds.StudyError, match="config_digest"):
        run_seeds.run_study(study, out, FakeRunner(), log=_collect([]))


def test_stale_results_and_wrong_seed_are_not_read(tmp_path):
    arm = run_seeds.Arm("a", "configs/ICMDepth/demo.yaml")
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "eval_results.json").write_text('{"m": 1.0}')

    def crashes(config_file, opts, out_dir, eval_only):
        assert not (out_dir / "eval_results.json").exists()
        return None, 0.5

    assert run_seeds.execute(folder, arm, 0, crashes)["failed"]

    def ignores_seed(config_file, opts, out_dir, eval_only):
        (out_dir / "config.yaml").write_text("SEED: -1\n")
        return {"m": 1.0}, 0.5

    record = run_seeds.execute(folder, arm, 0, ignores_seed)
    assert record["failed"] and "SEED -1" in record["log"]
    assert not (folder / "run.json").exists()


def _collect(lines):
    def log(*args, **kwargs):
        lines.append(" ".join(str(a) for a in args))

    return log


# ---------------------------------------------------------------- end to end

TINY_R_ONLY = [
    "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.STEPS", "()",
    "MODEL.FLASH_AMBIENT.GENERATOR.BASE_CHANNELS", "4",
    "INPUT.FLASH_AMBIENT.RESIZE", "(32, 24)", "INPUT.FLASH_AMBIENT.CROP_BASE", "24",
    "INPUT.FLASH_AMBIENT.CROP_SIZE", "16",
]  # fmt: skip


@pytest.mark.slow
def test_two_seed_study_of_a_tiny_arm(tmp_path, capsys):
    """Two real training runs; the same seed in a second study reproduces its metrics exactly,
    another seed does not, and a rerun of the study runs nothing."""
    if "flash_ambient" not in {p[1] for p in available_projects()}:
        pytest.skip("the FlashAmbient project is not installed")
    arm = ["--arm", "r only", "configs/FlashAmbient/demo_r_only.yaml", *TINY_R_ONLY]
    common = ["--output-dir", str(tmp_path), "--metrics", "flash_ambient/PSNR"]
    assert run_seeds.main([*arm, "--name", "a", "--seeds", "0", "1", *common]) == 0
    summary = json.loads((tmp_path / "a/summary.json").read_text())
    runs = summary["arms"][0]["metrics"]["flash_ambient/PSNR"]["runs"]
    assert runs["0"] != runs["1"] and all(math.isfinite(v) for v in runs.values())
    assert "| flash_ambient/PSNR | r only |" in (tmp_path / "a/summary.md").read_text()

    assert run_seeds.main([*arm, "--name", "b", "--seeds", "0", *common]) == 0
    again = json.loads((tmp_path / "b/summary.json").read_text())
    assert again["arms"][0]["metrics"]["flash_ambient/PSNR"]["runs"]["0"] == runs["0"]

    capsys.readouterr()
    assert run_seeds.main([*arm, "--name", "a", "--seeds", "0", "1", *common]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == 2 and "running" not in out
