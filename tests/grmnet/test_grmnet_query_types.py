"""Position-stratified evaluation: query tags from the ground truth, AP per tag."""

import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, Instances

from d2common.registry import EVALUATOR_REGISTRY
from d2common.testing import plugin_cfg, shared_data
from grmnet.data import SKETCHYSCENE_CATEGORIES, load_sketchyscene_matching, read_instances
from grmnet.data.query_types import CATEGORY, POSITION, query_type
from grmnet.data.sketchyscene import class_gt_path, instance_gt_path

from .test_grmnet_data import _write_sketch

TREE, SUN, CAR = 42, 40, 13


@pytest.mark.parametrize(
    "referred, categories, expected",
    [
        ([0, 1], [TREE, TREE, SUN], CATEGORY),  # "the trees"
        ([0], [TREE, TREE, SUN], POSITION),  # "the left tree"
        ([2], [TREE, TREE, SUN], CATEGORY),  # "the sun on the left": the only sun
        ([1, 1, 0], [TREE, TREE, SUN], CATEGORY),  # repeated index, order irrelevant
        ([0, 1, 2], [TREE, TREE, SUN], CATEGORY),  # two categories, each complete
        ([0, 2], [TREE, TREE, SUN], POSITION),  # all suns but not all trees
        ([0, 2], [TREE, None, TREE], CATEGORY),  # an instance without category is no tree
        ([3], [CAR, CAR, CAR, CAR], POSITION),
    ],
)
def test_query_type_hand_made(referred, categories, expected):
    assert query_type(referred, categories) == expected


# Sketch 2 of the real validation expressions: the categories of its 16 instances, read off the
# expressions ("the sun": [0], "the clouds": [1, 2, 3], ...); the real masks are not public.
REAL_VAL_2 = {0: "sun", 15: "road", **{i: "cloud" for i in (1, 2, 3)},
              **{i: "grass" for i in (4, 5, 6, 14)}, **{i: "tree" for i in (7, 8, 9, 10, 11)},
              12: "cat", 13: "cat"}  # fmt: skip
REAL_VAL_2_POSITION = {
    "the second tree on the left", "the cat on the right", "the right cat",
    "the tree on the leftmost", "the middle tree", "the cat on the left", "the leftmost tree",
    "the tree in the middle", "the tree on the rightmost", "the left cat",
    "the second tree on the right", "the rightmost tree",
}  # fmt: skip


def test_real_expressions_are_tagged_from_the_ground_truth(tmp_path):
    real = shared_data("sketchyscene_matching")
    entries = json.loads((real / "sentence_instance_val.json").read_text())
    entry = next(e for e in entries if e["key"] == 2)
    (tmp_path / "sentence_instance_val.json").write_text(json.dumps([entry]))
    ids = [3 * (n + 1) for n in range(len(REAL_VAL_2))]  # instance index = rank of the id
    classes = [SKETCHYSCENE_CATEGORIES.index(REAL_VAL_2[n]) + 1 for n in range(len(ids))]
    _write_sketch(tmp_path, "val", 2, ids, classes, 750)
    records = load_sketchyscene_matching(str(tmp_path), "val")
    assert len(records) == len(entry["sen_instIdx_map"]) == 30
    tags = {r["expression"]: r["query_type"] for r in records}
    assert {e for e, t in tags.items() if t == POSITION} == REAL_VAL_2_POSITION
    # "the two cats in front of the trees" names a relation but refers to every cat.
    assert tags["the two cats in front of the trees"] == CATEGORY


@pytest.fixture
def toy_val_records(grm_toy_root):
    """The toy validation records, registered under a name of their own."""
    root = str(grm_toy_root / "toy" / "grmnet")
    name = "grmnet_query_type_test_val"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: load_sketchyscene_matching(root, "val"))
        MetadataCatalog.get(name).set(thing_classes=list(SKETCHYSCENE_CATEGORIES))
    return name, root


def _instances(anns, h, w):
    inst = Instances((h, w))
    masks = [mask_util.decode(a["segmentation"]).astype(bool) for a in anns]
    inst.pred_boxes = Boxes(torch.tensor([a["bbox"] for a in anns], dtype=torch.float32))
    inst.pred_masks = torch.from_numpy(np.stack(masks))
    inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.long)
    inst.scores = torch.linspace(0.9, 0.5, len(anns))
    return {"instances": inst}


def _category_oracle(root):
    """Predicts every instance of the referents' categories: what a detector that reads only
    the category would output."""

    def predict(record):
        key = record["sketch_id"]
        anns, _ = read_instances(
            class_gt_path(root, "val", key), instance_gt_path(root, "val", key)
        )
        named = {a["category_id"] for a in record["annotations"]}
        chosen = [a for a in anns if a is not None and a["category_id"] in named]
        return _instances(chosen, record["height"], record["width"])

    return predict


def _evaluate(name, out, predict, with_types=True):
    cfg = plugin_cfg("configs/GRMNet/demo.yaml")
    evaluator = EVALUATOR_REGISTRY.get("GRMReferringEvaluator")(cfg, name, str(out))
    evaluator.reset()
    for record in DatasetCatalog.get(name):
        x = {"image_id": record["image_id"]}
        if with_types:
            x["query_type"] = record["query_type"]
        evaluator.process([x], [predict(record)])
    return evaluator.evaluate()


def test_ap_per_query_type(toy_val_records, tmp_path):
    name, root = toy_val_records
    records = DatasetCatalog.get(name)
    n_pos = sum(r["query_type"] == POSITION for r in records)
    assert 0 < n_pos < len(records)

    perfect = _evaluate(name, tmp_path / "perfect", lambda r: _instances(
        r["annotations"], r["height"], r["width"]))  # fmt: skip
    for task in ("segm", "segm_category", "segm_position", "bbox_position"):
        assert perfect[task]["AP"] == pytest.approx(100.0)
    assert perfect["query_types"] == {CATEGORY: len(records) - n_pos, POSITION: n_pos}

    oracle = _evaluate(name, tmp_path / "oracle", _category_oracle(root))
    assert oracle["segm_category"]["AP"] == pytest.approx(100.0)
    assert oracle["segm_position"]["AP"] < 90.0
    assert oracle["segm_position"]["AP"] < oracle["segm"]["AP"] < 100.0

    # Independent reference: the plain evaluator on a dataset of the position queries only.
    subset = "grmnet_query_type_test_val_position"
    if subset not in DatasetCatalog.list():
        DatasetCatalog.register(
            subset, lambda: [r for r in load_sketchyscene_matching(root, "val")
                             if r["query_type"] == POSITION])  # fmt: skip
        MetadataCatalog.get(subset).set(thing_classes=list(SKETCHYSCENE_CATEGORIES))
    alone = _evaluate(subset, tmp_path / "alone", _category_oracle(root), with_types=False)
    for metric in ("AP", "AP50", "AP75"):
        assert oracle["segm_position"][metric] == pytest.approx(alone["segm"][metric])
        assert oracle["bbox_position"][metric] == pytest.approx(alone["bbox"][metric])
    assert "segm_position" not in alone and "query_types" not in alone


def test_oracle_module_matches_the_hand_written_oracles(toy_val_records, tmp_path):
    from grmnet.oracle import evaluate_oracle

    name, root = toy_val_records
    cfg = plugin_cfg("configs/GRMNet/demo.yaml")
    ours = evaluate_oracle(cfg, name, "category", str(tmp_path / "module"))
    reference = _evaluate(name, tmp_path / "test", _category_oracle(root))
    for task in ("segm", "segm_category", "segm_position", "bbox_position"):
        assert ours[task]["AP"] == pytest.approx(reference[task]["AP"])
    perfect = evaluate_oracle(cfg, name, "referred", str(tmp_path / "referred"))
    assert perfect["segm_position"]["AP"] == pytest.approx(100.0)


def test_estimate_from_expressions_alone():
    from grmnet.data.query_types import category_nouns, estimate_query_types

    nouns = category_nouns(SKETCHYSCENE_CATEGORIES)
    sketch = {"the trees": [0, 1], "the left tree": [0], "the sun near the trees": [2],
              "the person on the right": [3], "the people": [3], "a zebra": [4]}  # fmt: skip
    assert estimate_query_types(sketch, nouns) == {
        "the trees": CATEGORY, "the left tree": POSITION, "the sun near the trees": CATEGORY,
        "the person on the right": CATEGORY, "the people": CATEGORY, "a zebra": None,
    }  # fmt: skip
    # An instance no expression refers to is invisible: "the left tree" of three trees.
    assert estimate_query_types({"the left tree": [0], "the two trees": [0, 1]}, nouns) == {
        "the left tree": POSITION, "the two trees": CATEGORY}  # fmt: skip


def test_estimate_agrees_with_the_ground_truth_on_a_real_sketch():
    from grmnet.data.query_types import category_nouns, estimate_query_types

    real = shared_data("sketchyscene_matching")
    entry = next(
        e for e in json.loads((real / "sentence_instance_val.json").read_text()) if e["key"] == 2
    )
    tags = estimate_query_types(entry["sen_instIdx_map"], category_nouns(SKETCHYSCENE_CATEGORIES))
    assert {e for e, t in tags.items() if t == POSITION} == REAL_VAL_2_POSITION
    assert all(t == CATEGORY for e, t in tags.items() if e not in REAL_VAL_2_POSITION)


def test_query_stats_command(tmp_path, capsys):
    from grmnet.query_stats import main

    path = tmp_path / "sentence_instance_val.json"
    path.write_text(json.dumps([{"key": 1, "sen_instIdx_map": {
        "the trees": [0, 1], "the left tree": [0], "the sun": [2]}}]))  # fmt: skip
    counts = main([str(path)])
    assert counts == {CATEGORY: 2, POSITION: 1}
    assert "needs position 1 (33.3%)" in capsys.readouterr().out
