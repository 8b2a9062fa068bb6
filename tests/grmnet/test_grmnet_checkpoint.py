"""Self-contained checkpoints: vocabulary and category names travel with the weights, so the
predictor and tools/refer_sketch.py run from a config + checkpoint with no dataset present."""

import os
import shutil

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer

from d2common.testing import load_tool, run_train_steps
from grmnet.data import SKETCHYSCENE_CATEGORIES
from grmnet.inference_info import STATE_KEY, InferenceInfo, read_checkpoint_info

from ._toy_registry import toy_names_at
from .test_grmnet_model import TINY, tiny_cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory, grm_toy_root):
    """A 1-step GRMNet checkpoint of the tiny demo config and its vocabulary tokens."""
    tmp = tmp_path_factory.mktemp("grm_ckpt")
    mp = pytest.MonkeyPatch()
    try:
        with toy_names_at(grm_toy_root):
            cfg = tiny_cfg(tmp, grm_toy_root, mp)
            trainer, _ = run_train_steps(cfg, 1)
            DetectionCheckpointer(trainer.model, save_dir=str(tmp)).save("model")
    finally:
        mp.undo()
    vocab = (grm_toy_root / "toy" / "grmnet" / "vocab.txt").read_text().split()
    return tmp / "model.pth", vocab


@pytest.fixture
def no_datasets(tmp_path, monkeypatch):
    """An empty datasets root that the toy names point at, and a fresh working directory."""
    empty = tmp_path / "empty_datasets"
    empty.mkdir()
    work = tmp_path / "fresh"
    work.mkdir()
    monkeypatch.setenv("DETECTRON2_DATASETS", str(empty))
    monkeypatch.chdir(work)
    with toy_names_at(empty):
        yield empty, work


def test_checkpoint_carries_vocabulary_and_category_names(trained):
    path, vocab = trained
    info = read_checkpoint_info(str(path))
    assert list(info.vocabulary) == vocab
    assert list(info.thing_classes) == SKETCHYSCENE_CATEGORIES
    assert InferenceInfo.from_tensor(info.to_tensor()) == info
    assert read_checkpoint_info("") is None
    assert read_checkpoint_info("detectron2://ImageNetPretrained/MSRA/R-50.pkl") is None


def test_refer_sketch_runs_without_any_dataset(trained, grm_toy_root, no_datasets, capsys):
    weights, _ = trained
    empty, work = no_datasets
    sketch = work / "sketch.png"
    shutil.copy(
        grm_toy_root / "toy" / "grmnet" / "val" / "DRAWING_GT" / "L0_sample10001.png", sketch
    )
    config = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "GRMNet", "demo.yaml")
    load_tool("refer_sketch").main(
        ["--config-file", config, "--image", str(sketch), "--score-thresh", "0.0",
         "--expression", "the dog on the right of the bench", "--output", "out.png",
         *TINY, "MODEL.WEIGHTS", str(weights)]
    )  # fmt: skip
    assert (work / "out.png").stat().st_size > 0
    assert "unknown words: dog, bench" in capsys.readouterr().out
    assert list(empty.iterdir()) == [], "a dataset was generated"
    assert sorted(p.name for p in work.iterdir()) == ["out.png", "sketch.png"]


def test_predictor_takes_vocabulary_and_names_from_the_checkpoint(trained, no_datasets, caplog):
    from d2common.testing import plugin_cfg
    from grmnet.predictor import ReferringPredictor

    weights, vocab = trained
    cfg = plugin_cfg("configs/GRMNet/demo.yaml", TINY + ["MODEL.WEIGHTS", str(weights)])
    predictor = ReferringPredictor(cfg)
    assert predictor.vocabulary.tokens == vocab
    assert predictor.class_names == SKETCHYSCENE_CATEGORIES
    image = torch.full((100, 120, 3), 255, dtype=torch.uint8).numpy()
    result = predictor(image, "the zebra left of the Tree and a zebra")
    assert result.unknown_words == ["zebra", "and", "a"]
    assert "zebra, and, a" in caplog.text


def test_a_checkpoint_of_another_vocabulary_is_refused(trained, tmp_path, no_datasets):
    from d2common.testing import plugin_cfg
    from grmnet.predictor import ReferringPredictor

    weights, vocab = trained
    other = tmp_path / "other_vocab.txt"  # same size, so shapes alone would not tell
    other.write_text("\n".join(vocab[:2] + vocab[:1:-1]) + "\n")
    cfg = plugin_cfg(
        "configs/GRMNet/demo.yaml",
        TINY + ["MODEL.WEIGHTS", str(weights), "MODEL.GRMNET.LANGUAGE.VOCAB_FILE", str(other)],
    )
    with pytest.raises((RuntimeError, ValueError), match="vocabulary"):
        ReferringPredictor(cfg)


def test_a_checkpoint_without_information_falls_back_to_the_config(trained, tmp_path):
    weights, vocab = trained
    checkpoint = torch.load(str(weights), map_location="cpu", weights_only=True)
    del checkpoint["model"][STATE_KEY]
    old = tmp_path / "old.pth"
    torch.save(checkpoint, str(old))
    assert read_checkpoint_info(str(old)) is None
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pth"):
        read_checkpoint_info(str(broken))
