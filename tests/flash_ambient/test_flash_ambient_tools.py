"""tools/convert_vgg16.py and tools/flash_to_ambient.py, run as a user would."""

import subprocess
import sys

import cv2
import pytest
import torch
import torchvision
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from d2common.testing import plugin_cfg, repo_root, shared_data

from ._tiny import TINY_OPTS


def _tool(name, *args):
    cmd = [sys.executable, str(repo_root() / "tools" / name), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=repo_root())


def test_convert_vgg16_loads_into_the_encoder(tmp_path):
    sys.path.insert(0, str(repo_root() / "tools"))
    from convert_vgg16 import convert

    state_dict = torchvision.models.vgg16(weights=None).state_dict()
    assert len(convert(state_dict)["model"]) == 26  # the full dict, classifier included
    # The file round trip leaves out the 500 MB classifier (the tool ignores it) to stay fast.
    source = tmp_path / "vgg16.pth"
    torch.save({k: v for k, v in state_dict.items() if k.startswith("features.")}, source)
    out = tmp_path / "converted.pth"
    result = _tool("convert_vgg16.py", source, out)
    assert result.returncode == 0, result.stderr
    cfg = plugin_cfg(
        "configs/FlashAmbient/flash_ambient_vgg16_1000ep_faid.yaml", ["MODEL.DEVICE", "cpu"]
    )
    model = build_model(cfg)
    DetectionCheckpointer(model).load(str(out))
    encoder = model.generator.encoder.state_dict()
    assert len(encoder) == 26
    for key, value in encoder.items():
        assert torch.equal(value, state_dict[f"features.{key}"]), key

    bad = {k: v for k, v in state_dict.items() if not k.startswith("features.28")}
    with pytest.raises(KeyError, match="features.28.weight"):
        convert(bad, "bad.pth")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    result = _tool("convert_vgg16.py", tmp_path / "partial.pth", tmp_path / "x.pth")
    assert result.returncode != 0 and "not a torchvision VGG-16" in result.stderr


def test_flash_to_ambient_on_real_samples(tmp_path):
    samples = shared_data("faid_samples")
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", TINY_OPTS)
    weights = tmp_path / "tiny.pth"
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("tiny")
    opts = TINY_OPTS[:8]  # device, weights and the tiny widths
    result = _tool(
        "flash_to_ambient.py",
        "--config-file", "configs/FlashAmbient/demo.yaml",
        "--input", samples,
        "--output", tmp_path / "out",
        *opts[:2], *opts[4:8], "MODEL.WEIGHTS", weights,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(outputs) == 6 and "People_014_flash_grid.png" in outputs
    grid = cv2.imread(str(tmp_path / "out" / "People_014_flash_grid.png"))
    output = cv2.imread(str(tmp_path / "out" / "People_014_flash_output.png"))
    assert sorted(output.shape[:2]) == [96, 128]  # demo.yaml's RESIZE, portrait kept portrait
    assert grid.shape[1] >= 4 * output.shape[1]  # flash | output | ambient | attention
