"""Horizontal flips that mirror the expression ("left" <-> "right"), off by default."""

import numpy as np
import pytest

from d2common.testing import plugin_cfg
from grmnet.data import GRMDatasetMapper, load_sketchyscene_matching
from grmnet.language import mirror_expression


@pytest.mark.parametrize(
    "expression, mirrored",
    [
        ("the tree on the left of the house", "the tree on the right of the house"),
        ("the leftmost tree", "the rightmost tree"),
        ("The Rightmost cloud and the LEFT sun", "The Leftmost cloud and the Right sun"),
        ("the second car on the right", "the second car on the left"),
        ("the two trees in front of the house", "the two trees in front of the house"),
        ("leftover rights", "leftover rights"),  # whole words only
    ],
)
def test_mirror_expression(expression, mirrored):
    assert mirror_expression(expression) == mirrored
    assert mirror_expression(mirror_expression(expression)).lower() == expression.lower()


def _mapper(root, is_train, *opts):
    cfg = plugin_cfg("configs/GRMNet/demo.yaml", list(opts))
    cfg.MODEL.GRMNET.LANGUAGE.VOCAB_FILE = f"{root}/vocab.txt"
    return cfg, GRMDatasetMapper(cfg, is_train)


def test_flip_mirrors_image_masks_and_words(grm_toy_root):
    root = str(grm_toy_root / "toy" / "grmnet")
    records = load_sketchyscene_matching(root, "train")
    record = next(r for r in records if "left" in r["expression"].split())
    cfg, plain = _mapper(root, True)
    assert cfg.INPUT.GRMNET.HFLIP_PROB == 0.0  # off by default
    _, flipping = _mapper(root, True, "INPUT.GRMNET.HFLIP_PROB", "1.0")
    a, b = plain(record), flipping(record)
    assert b["expression"] == record["expression"].replace("left", "right")
    assert a["expression"] == record["expression"]
    right = flipping.vocabulary.index["right"]
    assert right in b["expression_tokens"].tolist() and right not in a["expression_tokens"].tolist()
    np.testing.assert_array_equal(b["image"].numpy(), a["image"].numpy()[:, :, ::-1])
    ma, mb = a["instances"].gt_masks.tensor.numpy(), b["instances"].gt_masks.tensor.numpy()
    np.testing.assert_array_equal(mb, ma[:, :, ::-1])
    width = a["image"].shape[2]
    boxes_a, boxes_b = a["instances"].gt_boxes.tensor, b["instances"].gt_boxes.tensor
    np.testing.assert_allclose(boxes_b[:, 0], width - boxes_a[:, 2])
    np.testing.assert_allclose(boxes_b[:, 2], width - boxes_a[:, 0])
    # never in testing, and detectron2's own flip stays dropped
    _, test_mapper = _mapper(root, False, "INPUT.GRMNET.HFLIP_PROB", "1.0")
    assert test_mapper(record)["expression"] == record["expression"]
    _, d2flip = _mapper(root, True, "INPUT.RANDOM_FLIP", "horizontal")
    assert all(d2flip(record)["expression"] == record["expression"] for _ in range(4))
