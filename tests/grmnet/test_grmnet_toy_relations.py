"""Toy relations: no "in front of" / "behind" between a sky and a ground object (those would
always select the whole category), and toy data of an older generator is regenerated."""

import json

import numpy as np

from d2common.data import seeded_rng
from grmnet.data import candidate_expressions, render_scene
from grmnet.data.builtin import set_aside_stale_toy_data
from grmnet.data.expressions import generate_expressions
from grmnet.data.toy import TOY_VERSION, generate_toy_dataset, toy_version

SKY = ("sun", "cloud")


def test_vertical_relations_only_within_a_layer():
    boxes = np.array([[10, 150, 30, 200], [100, 150, 120, 200], [60, 10, 90, 40],
                      [150, 120, 200, 160]], dtype=float)  # fmt: skip
    names = ["tree", "tree", "sun", "house"]
    plain = candidate_expressions(boxes, names, (256, 256))
    layered = candidate_expressions(boxes, names, (256, 256), sky=SKY)
    assert plain["the two trees in front of the sun"] == [0, 1]  # the degenerate case
    assert "the two trees in front of the sun" not in layered
    assert "the sun behind the house" not in layered
    assert layered["the two trees in front of the house"] == [0, 1]  # ground / ground stays
    assert layered["the tree on the left of the sun"] == [0]  # horizontal relations stay


def test_generated_toy_expressions_have_no_sky_ground_vertical_relation():
    seen_vertical = 0
    for n in range(60):
        rng = seeded_rng(0, "train", n)
        _, _, _, names, boxes = render_scene(rng, 128)
        for expression in generate_expressions(boxes, names, (128, 128), rng, 40, sky=SKY):
            for relation in (" in front of the ", " behind the "):
                if relation in expression:
                    seen_vertical += 1
                    target = expression.split(relation)[0]
                    reference = expression.split(relation)[1]
                    target_sky = any(s in target for s in ("sun", "cloud"))
                    assert target_sky == (reference in SKY), expression
    assert seen_vertical > 0


def test_toy_data_of_an_older_generator_is_set_aside(tmp_path):
    root = tmp_path / "grmnet"
    generate_toy_dataset(str(root), num_train=2, num_val=1, size=64)
    (root / ".complete").touch()
    assert toy_version(str(root)) == TOY_VERSION
    set_aside_stale_toy_data(str(root))
    assert root.exists()  # current version: kept
    (root / "generator_version.txt").unlink()  # what version 1 wrote: no version file
    entries = json.loads((root / "sentence_instance_train.json").read_text())
    set_aside_stale_toy_data(str(root))
    assert not root.exists()
    (moved,) = [p for p in tmp_path.iterdir() if p.name.startswith("grmnet.v1.")]
    assert json.loads((moved / "sentence_instance_train.json").read_text()) == entries
