"""d2common helpers: toy-data generation, seeding, result flattening, evaluator base, pictures."""

import csv
import multiprocessing as mp
import os

import numpy as np
import pytest

from d2common.data import ensure_generated, seeded_rng
from d2common.engine import write_results
from d2common.evaluation import PerImageMetricEvaluator
from d2common.visualization import colorize, panel_grid, save_rgb


def _slow_generate(directory):
    # Writes a counter file; a second generation would make the count 2.
    with open(os.path.join(os.path.dirname(directory), "calls.txt"), "a") as f:
        f.write("x")
    np.save(os.path.join(directory, "data.npy"), seeded_rng(7, "split", 3).integers(0, 9, 5))


def _generate_in_process(target):
    ensure_generated(target, _slow_generate)


def test_ensure_generated_once_across_processes(tmp_path):
    target = str(tmp_path / "toy" / "pkg")
    procs = [mp.get_context("spawn").Process(target=_generate_in_process, args=(target,))]
    procs.append(mp.get_context("spawn").Process(target=_generate_in_process, args=(target,)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert (tmp_path / "toy" / "calls.txt").read_text() == "x"
    assert sorted(os.listdir(target)) == [".complete", "data.npy"]
    assert not [n for n in os.listdir(tmp_path / "toy") if ".tmp" in n or n.endswith(".lock")]


def test_failed_generation_leaves_nothing_behind(tmp_path):
    target = str(tmp_path / "toy")

    def broken(directory):
        open(os.path.join(directory, "half.txt"), "w").close()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ensure_generated(target, broken)
    assert not os.path.exists(target)
    assert os.listdir(tmp_path) == []
    ensure_generated(target, lambda d: open(os.path.join(d, "ok"), "w").close())
    assert os.path.exists(os.path.join(target, "ok"))


def test_seeded_rng_depends_on_every_key():
    a = seeded_rng(0, "train", 1).random(4)
    assert np.array_equal(a, seeded_rng(0, "train", 1).random(4))
    assert not np.array_equal(a, seeded_rng(0, "train", 2).random(4))
    assert not np.array_equal(a, seeded_rng(1, "train", 1).random(4))
    assert not np.array_equal(a, seeded_rng(0, "val", 1).random(4))


def test_write_results_flattens_tasks_and_datasets(tmp_path):
    import json

    path = write_results({"bbox": {"AP": 1.5}, "segm": {"AP": 2.0}}, str(tmp_path), "a.json")
    assert json.loads(open(path).read()) == {"bbox/AP": 1.5, "segm/AP": 2.0}
    nested = {"ds1": {"bbox": {"AP": 1.0}}, "ds2": {"bbox": {"AP": 3.0}}}
    path = write_results(nested, str(tmp_path), "b.json")
    assert json.loads(open(path).read()) == {"ds1/bbox/AP": 1.0, "ds2/bbox/AP": 3.0}


class _AbsErrorEvaluator(PerImageMetricEvaluator):
    task_name = "err"

    def compute_image_metrics(self, input, output):
        return {"abs": abs(input["value"] - output["value"])}


def test_per_image_evaluator_writes_csv_and_means(tmp_path):
    evaluator = _AbsErrorEvaluator("toy", str(tmp_path))
    evaluator.reset()
    evaluator.process(
        [{"image_id": 1, "value": 1.0}, {"image_id": 2, "value": 4.0}], [{"value": 2.0}] * 2
    )
    results = evaluator.evaluate()
    assert results["err"] == {"abs": pytest.approx(1.5)}
    assert results["records"] == {"evaluated": 2, "candidates": 2, "excluded": 0}
    rows = list(csv.DictReader(open(tmp_path / "per_image_metrics.csv")))
    assert [(r["image_id"], float(r["abs"])) for r in rows] == [("1", 1.0), ("2", 2.0)]


def test_colorize_and_panels(tmp_path):
    values = np.array([[0.0, 1.0], [np.nan, 0.5]])
    rgb = colorize(values)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert (rgb[1, 0] == 0).all() and not (rgb[0, 0] == rgb[0, 1]).all()
    grid = panel_grid([("a", np.zeros((10, 20))), ("b", np.ones((5, 5, 3)))], columns=1, height=30)
    assert grid.shape[1] == 60 and grid.shape[0] == 2 * (30 + 22)
    assert os.path.exists(save_rgb(str(tmp_path / "x" / "g.png"), grid))
