"""Statistics and reports of a multi-seed study: per arm and metric the mean, the sample standard
deviation and the runs; per pair of arms the difference of means and Welch's t-test.

A gap between two arms "exceeds the spread" when Welch's two-sided p-value is below ``alpha``
(0.05 by default). p-values are not corrected for the number of pairs and metrics compared.
"""

import json
import math
from itertools import combinations
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from scipy import stats

EXCEEDS = "gap exceeds spread"
WITHIN = "within spread"
UNTESTED = "not testable (fewer than 2 runs)"


def finite(values: Sequence) -> List[float]:
    """The values that are numbers and finite (failed runs are None, undefined metrics NaN)."""
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def mean_std(values: Sequence[float]):
    """Returns (mean, sample std with ddof=1); std is None for fewer than 2 values, both None
    for none."""
    n = len(values)
    if n == 0:
        return None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def welch(a: Sequence[float], b: Sequence[float]) -> Dict[str, Optional[float]]:
    """Welch's unequal-variance t-test of mean(a) - mean(b), two-sided.

    Returns:
        dict: ``diff`` (mean(a) - mean(b)), ``t``, ``df`` (Welch-Satterthwaite) and ``p``; t, df
        and p are None with fewer than 2 values on a side. When both sides have zero spread the
        test is degenerate: p is 0 if the means differ (t = +-inf, df None), 1 if they are equal.
    """
    mean_a, std_a = mean_std(a)
    mean_b, std_b = mean_std(b)
    diff = None if mean_a is None or mean_b is None else mean_a - mean_b
    if std_a is None or std_b is None:
        return {"diff": diff, "t": None, "df": None, "p": None}
    se_a, se_b = std_a**2 / len(a), std_b**2 / len(b)
    se2 = se_a + se_b
    if se2 == 0.0:
        if diff == 0.0:
            return {"diff": diff, "t": 0.0, "df": None, "p": 1.0}
        return {"diff": diff, "t": math.copysign(math.inf, diff), "df": None, "p": 0.0}
    t = diff / math.sqrt(se2)
    df = se2**2 / (se_a**2 / (len(a) - 1) + se_b**2 / (len(b) - 1))
    p = float(2.0 * stats.t.sf(abs(t), df))
    return {"diff": diff, "t": t, "df": df, "p": p}


def verdict(p: Optional[float], alpha: float = 0.05) -> str:
    """The plain-words reading of a Welch p-value: the gap exceeds the spread when p < alpha."""
    if p is None:
        return UNTESTED
    return EXCEEDS if p < alpha else WITHIN


def summarize(arms: List[dict], metrics: List[str], alpha: float = 0.05) -> dict:
    """Summarises the runs of a study.

    Args:
        arms: in study order, each ``{"label": str, "runs": [run record, ...]}``, a run record
            being ``{"seed": int, "seconds": float, "metrics": {name: float}}`` or, for a failed
            run, ``{"seed": int, "failed": True}``.
        metrics: the metric names to report.
        alpha: significance level of the verdict.

    Returns:
        dict: ``alpha``, ``rule``, ``arms`` (label, seeds, ok runs, mean seconds, and per metric
        n, mean, std and the runs' values by seed) and ``pairs`` (per pair of arms and metric the
        Welch test and verdict).
    """
    arm_rows = []
    for arm in arms:
        ok = [r for r in arm["runs"] if not r.get("failed")]
        per_metric = {}
        for name in metrics:
            values = {r["seed"]: _number(r["metrics"].get(name)) for r in ok}
            mean, std = mean_std(finite(values.values()))
            per_metric[name] = {
                "n": len(finite(values.values())),
                "mean": mean,
                "std": std,
                "runs": {str(seed): value for seed, value in values.items()},
            }
        seconds = [r["seconds"] for r in ok if r.get("seconds") is not None]
        arm_rows.append(
            {
                "label": arm["label"],
                "seeds": [r["seed"] for r in arm["runs"]],
                "ok_runs": len(ok),
                "failed_seeds": [r["seed"] for r in arm["runs"] if r.get("failed")],
                "mean_seconds": sum(seconds) / len(seconds) if seconds else None,
                "metrics": per_metric,
            }
        )
    pairs = []
    for arm_a, arm_b in combinations(arm_rows, 2):
        for name in metrics:
            a = finite(arm_a["metrics"][name]["runs"].values())
            b = finite(arm_b["metrics"][name]["runs"].values())
            test = welch(a, b)
            pairs.append(
                {
                    "a": arm_a["label"],
                    "b": arm_b["label"],
                    "metric": name,
                    **test,
                    "verdict": verdict(test["p"], alpha),
                }
            )
    rule = (
        f"'{EXCEEDS}' when Welch's two-sided t-test (unequal variances) gives p < {alpha:g}, "
        f"otherwise '{WITHIN}'; std is the sample standard deviation (ddof=1); p-values are not "
        "corrected for the number of comparisons"
    )
    return {"alpha": alpha, "rule": rule, "arms": arm_rows, "pairs": pairs}


def _number(value):
    return None if value is None else float(value)


def fmt(value, digits: int = 4) -> str:
    """A compact number: 4 significant digits, '-' for None, 'nan' / 'inf' spelled out."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def to_markdown(summary: dict, title: str = "") -> str:
    """Three markdown tables: arms, per arm and metric (mean, std, runs), pairs of arms."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| arm | runs ok | mean time per run (s) |", "| --- | --- | --- |"]
    for arm in summary["arms"]:
        failed = f" (failed seeds: {arm['failed_seeds']})" if arm["failed_seeds"] else ""
        ok = f"{arm['ok_runs']} of {len(arm['seeds'])}{failed}"
        lines.append(f"| {_cell(arm['label'])} | {ok} | {fmt(arm['mean_seconds'], 3)} |")
    lines += [
        "",
        "| metric | arm | mean | std | runs (seed: value) |",
        "| --- | --- | --- | --- | --- |",
    ]
    metrics = list(summary["arms"][0]["metrics"]) if summary["arms"] else []
    for name in metrics:
        for arm in summary["arms"]:
            m = arm["metrics"][name]
            runs = ", ".join(f"{seed}: {fmt(v)}" for seed, v in m["runs"].items())
            cells = [_cell(name), _cell(arm["label"]), fmt(m["mean"]), fmt(m["std"]), runs]
            lines.append("| " + " | ".join(cells) + " |")
    if summary["pairs"]:
        lines += [
            "",
            "| metric | A | B | mean A - mean B | Welch t | df | p (two-sided) | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for pair in summary["pairs"]:
            lines.append(
                f"| {_cell(pair['metric'])} | {_cell(pair['a'])} | {_cell(pair['b'])} "
                f"| {fmt(pair['diff'])} "
                f"| {fmt(pair['t'], 3)} | {fmt(pair['df'], 3)} | {fmt(pair['p'], 2)} "
                f"| {pair['verdict']} |"
            )
    lines += ["", f"Rule: {summary['rule']}."]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_reports(summary: dict, output_dir: Path, title: str = "") -> str:
    """Writes ``summary.json`` (NaN / inf as null) and ``summary.md`` into ``output_dir``.

    Returns:
        str: the markdown text.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(summary, title)
    _atomic_write(output_dir / "summary.json", json.dumps(_strict(summary), indent=2) + "\n")
    _atomic_write(output_dir / "summary.md", markdown)
    return markdown


def _strict(obj):
    """A copy of ``obj`` with non-finite floats replaced by None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _atomic_write(path: Path, text: str):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
