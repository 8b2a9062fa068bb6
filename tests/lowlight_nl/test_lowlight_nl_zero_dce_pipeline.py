"""Zero-DCE++ in the pipeline: zero-reference training on the toy low-light images, the training
tool (checkpoint layout, resume, unreadable images), and the enhancer stage in the mapper, the
predictor, the panels tool and an eval-only run."""

import argparse
import json
import logging
import shutil
import uuid

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog

from d2common.data.validation import read_image_checked
from d2common.testing import load_tool, plugin_cfg, repo_root
from lowlight_nl.data.datasets import register_coco_directory
from lowlight_nl.data.mapper import LowLightDatasetMapper
from lowlight_nl.predictor import LowLightPredictor
from lowlight_nl.zero_dce import ZeroDCEEnhancer, ZeroDCEPP, read_state_dict
from lowlight_nl.zero_dce.train import LowLightBatches, build_optimizer, evaluate, train_step

CONFIG = "configs/LowLightNL/maskrcnn_R18_FPN_200it_toy.yaml"
TABLE1 = "configs/LowLightNL/maskrcnn_R50_FPN_pretrained-zerodce_coco_lowlight.yaml"
FAST = ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "DATALOADER.NUM_WORKERS", "0"]
# The release's parameter names, by hand (7 depthwise-separable layers).
RELEASE_KEYS = {f"e_conv{i}.{c}.{p}" for i in range(1, 8)
                for c in ("depth_conv", "point_conv") for p in ("weight", "bias")}  # fmt: skip


def _toy_paths(split="train", n=8):
    return [r["file_name"] for r in DatasetCatalog.get(f"lowlight_nl_toy_{split}")[:n]]


def _zero_dce_opts(weights, scale=4):
    return ["INPUT.LOWLIGHT_NL.ENHANCER", "zero_dce++", "INPUT.LOWLIGHT_NL.ZERO_DCE.WEIGHTS",
            str(weights), "INPUT.LOWLIGHT_NL.ZERO_DCE.SCALE_FACTOR", str(scale)]  # fmt: skip


@pytest.fixture(scope="module")
def trained_weights(tmp_path_factory):
    """A Zero-DCE++ checkpoint trained briefly on toy low-light images by the tool."""
    out = tmp_path_factory.mktemp("zero_dce")
    args = load_tool("train_zero_dce").parser().parse_args(
        ["--dataset", "lowlight_nl_toy_train", "--output", str(out), "--iters", "15",
         "--size", "48", "--batch-size", "4", "--lr", "1e-3", "--print-every", "5"]
    )  # fmt: skip
    load_tool("train_zero_dce").train(args)
    return out / "zero_dce++.pth"


def test_training_lowers_the_loss_and_brightens_toward_E():
    torch.manual_seed(0)
    stream = iter(LowLightBatches(_toy_paths(), batch_size=4, size=64, seed=0))
    fixed = torch.cat([next(stream), next(stream)])
    for lr, steps in ((1e-4, 10), (1e-3, 20)):  # the release's lr, and 10x to move in 20 steps
        torch.manual_seed(0)
        model = ZeroDCEPP(1)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        optimizer = build_optimizer(model, lr=lr)
        before = evaluate(model, fixed)
        for _ in range(steps):
            stats = train_step(model, optimizer, next(stream))
        after = evaluate(model, fixed)
        assert np.isfinite(stats["total"])
        assert after["total"] < before["total"], lr
        assert after["loss_exp"] < before["loss_exp"], lr
        assert after["mean"] > before["mean"], lr
        moved = [k for k, v in model.state_dict().items() if not torch.equal(v, start[k])]
        assert set(moved) == RELEASE_KEYS, lr
    assert float(fixed.mean()) < 0.25  # the toy images are dark
    assert after["total"] < 0.6 * before["total"]
    assert abs(after["mean"] - 0.6) < abs(before["mean"] - 0.6) - 0.1


def test_train_tool_checkpoint_resume_and_unreadable_images(tmp_path, caplog, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for p in _toy_paths(n=3):
        shutil.copy(p, images)
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    tool = load_tool("train_zero_dce")
    out = tmp_path / "out"
    common = ["--images", str(images), "--output", str(out), "--size", "32", "--batch-size", "2",
              "--print-every", "1", "--checkpoint-every", "2"]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        stats = tool.train(tool.parser().parse_args(common + ["--iters", "3"]))
    assert stats["skipped"] >= 1 and "broken.jpg" in caplog.text
    assert "iter 3/3 total=" in capsys.readouterr().out
    state = read_state_dict(str(out / "zero_dce++.pth"))
    assert set(state) == RELEASE_KEYS
    assert torch.load(out / "zero_dce++_state.pth", weights_only=True)["iteration"] == 3
    raw = torch.load(out / "zero_dce++.pth", weights_only=True)  # plain, as the release saves
    assert set(raw) == RELEASE_KEYS
    # resuming at the end changes nothing; further iterations continue from the saved state
    tool.train(tool.parser().parse_args(common + ["--iters", "3", "--resume"]))
    assert "resumed from" in capsys.readouterr().out
    again = read_state_dict(str(out / "zero_dce++.pth"))
    assert all(torch.equal(state[k], again[k]) for k in state)
    tool.train(tool.parser().parse_args(common + ["--iters", "5", "--resume"]))
    assert "iterations 3 -> 5" in capsys.readouterr().out
    assert torch.load(out / "zero_dce++_state.pth", weights_only=True)["iteration"] == 5
    (images / "only_bad").mkdir()
    (images / "only_bad" / "x.png").write_bytes(b"")
    with pytest.raises(RuntimeError, match="none of the 1 training images"):
        tool.train(tool.parser().parse_args(
            ["--images", str(images / "only_bad"), "--output", str(tmp_path / "o2"),
             "--iters", "1", "--size", "32"]))  # fmt: skip


def _identity_weights(path, trained):
    """The trained checkpoint with e_conv7 zeroed: the curve map is tanh(0) = 0."""
    state = read_state_dict(str(trained))
    for k in state:
        if k.startswith("e_conv7."):
            state[k] = torch.zeros_like(state[k])
    torch.save(state, path)
    return path


def test_mapper_stage_changes_images_and_is_identity_at_zero_curves(tmp_path, trained_weights):
    record = DatasetCatalog.get("lowlight_nl_toy_val")[0]
    stock = LowLightDatasetMapper(plugin_cfg(CONFIG, FAST), False)(dict(record))["image"]
    cfg = plugin_cfg(CONFIG, FAST + _zero_dce_opts(trained_weights))
    enhanced = LowLightDatasetMapper(cfg, False)(dict(record))["image"]
    assert enhanced.shape == stock.shape
    assert enhanced.float().mean() > stock.float().mean() + 10  # brighter
    # the mapper's BGR tensor is the enhancer's RGB output, resized: compare at full size
    rgb = read_image_checked(record["file_name"], format="RGB")
    expected_rgb = ZeroDCEEnhancer.from_weights(str(trained_weights), 4)(rgb)
    full = plugin_cfg(CONFIG, FAST + _zero_dce_opts(trained_weights) +
                      ["INPUT.MIN_SIZE_TEST", "0"])  # fmt: skip
    seen_bgr = LowLightDatasetMapper(full, False)(dict(record))["image"].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(seen_bgr, expected_rgb[:, :, ::-1])
    identity = _identity_weights(tmp_path / "identity.pth", trained_weights)
    for fmt in ("BGR", "RGB"):
        opts = FAST + _zero_dce_opts(identity) + ["INPUT.FORMAT", fmt]
        same = LowLightDatasetMapper(plugin_cfg(CONFIG, opts), False)(dict(record))["image"]
        ref = LowLightDatasetMapper(plugin_cfg(CONFIG, FAST + ["INPUT.FORMAT", fmt]), False)
        assert torch.equal(same, ref(dict(record))["image"]), fmt
    train_cfg = plugin_cfg(CONFIG, FAST + _zero_dce_opts(trained_weights))
    out = LowLightDatasetMapper(train_cfg, True)(dict(record))
    assert len(out["instances"]) == len(record["annotations"])  # geometry untouched


def test_missing_or_empty_weights_fail_at_start_up(tmp_path):
    missing = tmp_path / "no_such_Epoch99.pth"
    cfg = plugin_cfg(CONFIG, FAST + _zero_dce_opts(missing))
    for build in (lambda: LowLightDatasetMapper(cfg, False), lambda: LowLightPredictor(cfg)):
        with pytest.raises(FileNotFoundError, match="no_such_Epoch99.pth"):
            build()
    cfg = plugin_cfg(CONFIG, FAST + _zero_dce_opts(""))
    with pytest.raises(ValueError, match="ZERO_DCE.WEIGHTS"):
        LowLightDatasetMapper(cfg, True)
    cfg = plugin_cfg(CONFIG, FAST + ["INPUT.LOWLIGHT_NL.ENHANCER", "retinex"])
    with pytest.raises(ValueError, match="retinex"):
        LowLightDatasetMapper(cfg, False)


def test_predictor_and_panels_tool_use_zero_dce(trained_weights):
    cfg = plugin_cfg(CONFIG, FAST + _zero_dce_opts(trained_weights) + ["INPUT.MIN_SIZE_TEST", "0"])
    predictor = LowLightPredictor(cfg)
    image_bgr = np.random.default_rng(0).integers(0, 40, (48, 64, 3), dtype=np.uint8)
    enhancer = ZeroDCEEnhancer.from_weights(str(trained_weights), 4)
    expected = enhancer(np.ascontiguousarray(image_bgr[:, :, ::-1]))[:, :, ::-1]
    np.testing.assert_array_equal(predictor.enhance(image_bgr), expected)
    assert expected.mean() > image_bgr.mean() + 5
    seen = []
    model = predictor.predictor.model
    original = model.forward
    model.forward = lambda inputs: seen.append(inputs[0]["image"]) or original(inputs)
    with torch.no_grad():
        assert "instances" in predictor(image_bgr)
    np.testing.assert_array_equal(seen[0].permute(1, 2, 0).numpy(), expected)
    tool = load_tool("visualize_lowlight")
    spec = f"two-stage={repo_root() / TABLE1}"
    label, predictor, _, fmt = tool.build_predictor(spec, FAST + _zero_dce_opts(trained_weights))
    assert label == "two-stage (zero_dce++)" and predictor.method == "zero_dce++"
    assert predictor.enhance(np.full((40, 40, 3), 10, np.uint8)).mean() > 14


def test_table1_config():
    cfg = plugin_cfg(TABLE1)
    assert cfg.INPUT.LOWLIGHT_NL.ENHANCER == "zero_dce++"
    assert cfg.INPUT.LOWLIGHT_NL.ZERO_DCE.WEIGHTS.endswith("Epoch99.pth")
    assert cfg.INPUT.LOWLIGHT_NL.ZERO_DCE.SCALE_FACTOR == 12
    assert cfg.MODEL.WEIGHTS.startswith("detectron2://COCO-InstanceSegmentation/mask_rcnn_R_50")
    assert cfg.DATASETS.TEST == ("coco_2017_val_lowlight",)


def _small_toy_folder(folder, n=3):
    """A COCO folder with the first ``n`` toy validation images (registered under a new name)."""
    meta = MetadataCatalog.get("lowlight_nl_toy_val")
    data = json.loads(open(meta.json_file).read())
    images = data["images"][:n]
    keep = {im["id"] for im in images}
    (folder / "annotations").mkdir(parents=True)
    (folder / "val").mkdir()
    for im in images:
        shutil.copy(f"{meta.image_root}/{im['file_name']}", folder / "val")
    data = dict(data, images=images,
                annotations=[a for a in data["annotations"] if a["image_id"] in keep])  # fmt: skip
    (folder / "annotations" / "instances_val.json").write_text(json.dumps(data))
    (name,) = register_coco_directory(f"zdce_{uuid.uuid4().hex[:8]}", str(folder))
    return name


@pytest.mark.slow
def test_eval_only_run_with_zero_dce(tmp_path, trained_weights, monkeypatch):
    name = _small_toy_folder(tmp_path / "data")
    calls = []
    original = ZeroDCEEnhancer.__call__

    def counting(self, rgb):
        calls.append(rgb.shape)
        return original(self, rgb)

    monkeypatch.setattr(ZeroDCEEnhancer, "__call__", counting)
    train_net = load_tool("train_net")
    args = argparse.Namespace(
        config_file=str(repo_root() / CONFIG), eval_only=True, resume=False, num_gpus=1,
        opts=FAST + _zero_dce_opts(trained_weights) + [
            "DATASETS.TEST", f"('{name}',)", "OUTPUT_DIR", str(tmp_path / "out"),
            "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128",
            "MODEL.RPN.POST_NMS_TOPK_TEST", "50", "TEST.DETECTIONS_PER_IMAGE", "10"],
    )  # fmt: skip
    results = train_net.main(args)
    assert calls == [(160, 192, 3)] * 3  # every test image went through Zero-DCE++ once
    assert {"bbox", "segm"} <= set(results)
    assert all(np.isfinite(results[t]["AP"]) for t in ("bbox", "segm"))
    assert (tmp_path / "out" / "eval_only_results.json").is_file()
