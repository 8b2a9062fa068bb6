"""SketchyScene-Matching loader, vocabulary, template expressions, toy data and mapper."""

import json

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import scipy.io
import torch

from d2common.testing import plugin_cfg, shared_data
from grmnet.data import (
    GRMDatasetMapper,
    candidate_expressions,
    load_sketchyscene_matching,
    plural,
    read_expression_file,
    render_scene,
)
from grmnet.data.sketchyscene import class_gt_path, drawing_path, instance_gt_path
from grmnet.language import Vocabulary, tokenize


def test_real_expression_files_and_vocabulary():
    root = shared_data("sketchyscene_matching")
    counts = {}
    for split in ("train", "val", "test"):
        entries = read_expression_file(str(root / f"sentence_instance_{split}.json"))
        counts[split] = (len(entries), sum(len(e["sen_instIdx_map"]) for e in entries))
    assert counts == {"train": (1337, 30120), "val": (116, 2338), "test": (242, 6112)}
    vocab = Vocabulary.from_file(str(root / "vocab.txt"))
    assert len(vocab) == 76 and vocab.tokens[:2] == ["<pad>", "<unk>"]
    entries = read_expression_file(str(root / "sentence_instance_test.json"))
    lengths, unknown = [], 0
    for entry in entries:
        for expression in entry["sen_instIdx_map"]:
            ids = vocab.encode(expression, 15)
            lengths.append(int((ids != 0).sum()))
            unknown += int((ids == 1).sum())
    assert unknown == 0 and max(lengths) <= 13 and 3.5 < np.mean(lengths) < 5.0
    lines = (root / "vocab.txt").read_text().split()
    ids = vocab.encode("The tree, on the LEFT of zebra", 5)
    expected = [lines.index(w) for w in ("the", "tree", "on", "the", "left")]
    assert ids.tolist() == expected and vocab.encode("zebra", 3).tolist() == [1, 0, 0]


def _write_sketch(root, split, key, instance_ids, class_ids, size, drawing=None):
    """Writes one SketchyScene sketch with rectangular instances; returns the masks."""
    for sub in ("DRAWING_GT", "CLASS_GT", "INSTANCE_GT"):
        (root / split / sub).mkdir(parents=True, exist_ok=True)
    inst = np.zeros((size, size), np.uint16)
    cls = np.zeros((size, size), np.uint8)
    masks = []
    for n, (iid, cid) in enumerate(zip(instance_ids, class_ids)):
        y, x = 10 + (n // 6) * 120, 10 + (n % 6) * 120
        inst[y : y + 100, x : x + 60 + n] = iid
        cls[y : y + 100, x : x + 60 + n] = cid
        cls[y : y + 3, x : x + 5] = 7  # a minority label inside the mask
        masks.append(inst == iid)
    if drawing is None:
        drawing = np.full((size, size), 255, np.uint8)
    cv2.imwrite(drawing_path(str(root), split, key), drawing)
    scipy.io.savemat(class_gt_path(str(root), split, key), {"CLASS_GT": cls})
    scipy.io.savemat(instance_gt_path(str(root), split, key), {"INSTANCE_GT": inst})
    return masks


def test_loader_on_real_expressions_with_fixture_masks(tmp_path):
    """The real test-split expressions of sketch 30 and its real drawing, with masks written in
    the SketchyScene layout (the real masks are not public); other sketches are absent."""
    real = shared_data("sketchyscene_matching")
    entries = json.loads((real / "sentence_instance_test.json").read_text())
    entry = next(e for e in entries if e["key"] == 30)
    (tmp_path / "sentence_instance_test.json").write_text(json.dumps([entry, {"key": 999999,
        "sen_instIdx_map": {"the sun": [0]}}]))  # fmt: skip
    num = 1 + max(i for idx in entry["sen_instIdx_map"].values() for i in idx)
    ids = [5 * (n + 1) for n in range(num)][::-1]  # instance index = rank of the id
    drawing = cv2.imread(str(real / "L0_sample30.png"), cv2.IMREAD_GRAYSCALE)
    masks = _write_sketch(tmp_path, "test", 30, ids, [43] * num, 750, drawing)
    records = load_sketchyscene_matching(str(tmp_path), "test")
    assert records.load_report.excluded == [
        (drawing_path(str(tmp_path), "test", 999999), "file not found")
    ]
    assert len(records) == len(entry["sen_instIdx_map"])
    by_rank = {iid: m for iid, m in zip(ids, masks)}
    ranked = [by_rank[i] for i in sorted(ids)]
    for rec, (expression, indices) in zip(records, entry["sen_instIdx_map"].items()):
        assert rec["expression"] == expression and rec["sketch_id"] == 30
        assert (rec["height"], rec["width"]) == (750, 750)
        assert len(rec["annotations"]) == len(indices)
        for ann, idx in zip(rec["annotations"], indices):
            assert ann["category_id"] == 42  # "tree": majority label 43, 1-based
            assert np.array_equal(mask_util.decode(ann["segmentation"]).astype(bool), ranked[idx])
            ys, xs = np.nonzero(ranked[idx])
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert len({r["image_id"] for r in records}) == len(records)


def test_loader_skips_corrupt_and_bad_indices(tmp_path):
    _write_sketch(tmp_path, "val", 1, [3, 9], [13, 18], 256)
    _write_sketch(tmp_path, "val", 2, [1], [13], 256)
    (tmp_path / "val" / "INSTANCE_GT" / "sample_2_instance.mat").write_bytes(b"not a mat file")
    data = [
        {"key": 1, "sen_instIdx_map": {"the car": [0], "the cloud": [1], "the bus": [4]}},
        {"key": 2, "sen_instIdx_map": {"the car": [0]}},
    ]
    (tmp_path / "sentence_instance_val.json").write_text(json.dumps(data))
    records = load_sketchyscene_matching(str(tmp_path), "val")
    assert [r["expression"] for r in records] == ["the car", "the cloud"]
    assert [r["annotations"][0]["category_id"] for r in records] == [12, 17]
    reasons = records.load_report.reason_counts()
    assert reasons == {"unreadable .mat file": 1, "invalid instance index": 1}
    (tmp_path / "sentence_instance_val.json").write_text("{broken")
    with pytest.raises(ValueError, match="sentence_instance_val.json"):
        load_sketchyscene_matching(str(tmp_path), "val")


def test_template_expressions_hand_computed():
    boxes = np.array(
        [[10, 100, 30, 140], [60, 100, 80, 140], [120, 100, 140, 140], [80, 10, 120, 40],
         [170, 150, 230, 190]], dtype=float)  # fmt: skip
    names = ["tree", "tree", "tree", "sun", "house"]
    exprs = candidate_expressions(boxes, names, (256, 256))
    assert exprs["all the trees"] == [0, 1, 2] and exprs["the three trees"] == [0, 1, 2]
    assert exprs["the leftmost tree"] == [0] and exprs["the rightmost tree"] == [2]
    assert exprs["the tree in the middle"] == [1] and exprs["the two trees on the left"] == [0, 1]
    assert exprs["the sun"] == [3] and exprs["the three trees on the left of the house"] == [
        0,
        1,
        2,
    ]
    assert exprs["the three trees in front of the sun"] == [0, 1, 2]
    assert exprs["the sun behind the house"] == [3] and "the house near the sun" not in exprs
    assert exprs["the two trees on the left of the sun"] == [0, 1] and "both the trees" not in exprs
    assert exprs["the tree on the right of the sun"] == [2]
    assert plural("bench") == "benches" and plural("butterfly") == "butterflies"
    assert plural("sheep") == "sheep" and tokenize("The  tree,on-the left") == [
        "the", "tree", "on", "the", "left"]  # fmt: skip


def test_toy_scenes_are_deterministic_and_consistent():
    from d2common.data import seeded_rng

    a = render_scene(seeded_rng(0, "train", 3), 128)
    b = render_scene(seeded_rng(0, "train", 3), 128)
    for x, y in zip(a, b):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    drawing, classes, instances, names, boxes = a
    ids = np.unique(instances[instances > 0])
    assert len(ids) == len(names) >= 3
    for rank, iid in enumerate(ids):
        ys, xs = np.nonzero(instances == iid)
        assert boxes[rank].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert (drawing == 0).any() and (drawing == 255).mean() > 0.7


def test_toy_records_and_mapper(grm_toy_root, tmp_path):
    root = str(grm_toy_root / "toy" / "grmnet")
    records = load_sketchyscene_matching(root, "train")
    assert len(records) > 20 and all(r["annotations"] for r in records)
    vocab = Vocabulary.from_file(f"{root}/vocab.txt")
    assert all((vocab.encode(r["expression"], 15) != 1).all() for r in records)
    cfg = plugin_cfg("configs/GRMNet/demo.yaml", ["INPUT.RANDOM_FLIP", "horizontal"])
    cfg.MODEL.GRMNET.LANGUAGE.VOCAB_FILE = f"{root}/vocab.txt"
    mapper = GRMDatasetMapper(cfg, True)
    assert not any(type(a).__name__ == "RandomFlip" for a in mapper.augmentations.augs)
    out = mapper(records[0])
    assert out["image"].shape[1:] == (256, 256)  # 128 px toy scaled to MIN_SIZE_TRAIN 256
    assert out["expression"] == records[0]["expression"]
    assert out["expression_tokens"].shape == (15,) and out["expression_tokens"].dtype == torch.long
    inst = out["instances"]
    assert len(inst) == len(records[0]["annotations"])
    assert inst.gt_masks.tensor.shape[1:] == (256, 256)
    test_out = GRMDatasetMapper(cfg, False)(records[0])
    assert "instances" not in test_out and "expression_tokens" in test_out
    assert test_out["query_type"] == records[0]["query_type"]  # reaches the evaluator
