"""Inference on photographs: native size and aspect, tiles, optional ambient, tiny inputs."""

import logging

import cv2
import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from d2common.testing import load_tool, plugin_cfg, repo_root
from flash_ambient.inference import predict_image

from ._tiny import TINY_OPTS


def _model(config="demo", opts=()):
    torch.manual_seed(0)
    cfg = plugin_cfg(f"configs/FlashAmbient/{config}.yaml", TINY_OPTS + list(opts))
    return build_model(cfg).eval()


def _photo(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_identity_model_round_trips_through_pad_crop_and_tiles():
    """A per-pixel model (the identity) must come back unchanged, whatever the tiling."""
    model = _model("demo_identity")
    photo = _photo(101, 333)
    for tile, overlap in ((0, 32), (32, 8), (48, 0), (64, 16)):
        out = predict_image(model, photo, tile=tile, overlap=overlap)
        assert out.shape == (101, 333, 3)
        np.testing.assert_allclose(out, photo / 255.0, atol=1e-6)


def test_generator_output_has_the_photo_size_whole_and_tiled():
    model = _model()
    photo = _photo(101, 333)
    whole = predict_image(model, photo)
    assert whole.shape == (101, 333, 3)
    tiled = predict_image(model, photo, tile=64, overlap=16)
    assert tiled.shape == (101, 333, 3) and 0 <= tiled.min() and tiled.max() <= 1
    # A tile at least as large as the photo is the whole-image pass.
    np.testing.assert_array_equal(predict_image(model, photo, tile=352), whole)
    with pytest.raises(ValueError, match="multiple of 16"):
        predict_image(model, photo, tile=40)


def test_tiny_photo_gets_a_clear_error():
    with pytest.raises(ValueError, match="12x10 pixels is smaller than 16x16"):
        predict_image(_model(), _photo(10, 12))
    for config in ("demo", "flash_ambient_sidunet_1000ep_faid"):
        model = _model(config)
        with pytest.raises(ValueError, match="images of 15x40 pixels are smaller than 16x16"):
            model([{"image": torch.zeros(3, 40, 15, dtype=torch.uint8)}])


def _write(path, image):
    cv2.imwrite(str(path), image[:, :, ::-1])


def test_tool_native_size_optional_ambient_and_tiny_inputs(tmp_path, caplog):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _write(inputs / "Rooms_001_flash.png", _photo(101, 333, 1))  # no ambient
    _write(inputs / "Toys_002_flash.png", _photo(40, 56, 2))
    _write(inputs / "Toys_002_ambient.png", _photo(56, 40, 3))  # the other orientation
    _write(inputs / "Toys_003_flash.png", _photo(40, 56, 4))
    _write(inputs / "Toys_003_ambient.png", _photo(40, 56, 5))
    _write(inputs / "tiny.png", _photo(10, 12, 6))
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", TINY_OPTS)
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("tiny")
    out = tmp_path / "out"
    argv = ["--config-file", str(repo_root() / "configs/FlashAmbient/demo.yaml")]
    argv += ["--input", str(inputs), "--output", str(out)]
    argv += ["MODEL.DEVICE", "cpu", *map(str, TINY_OPTS[4:8])]
    argv += ["MODEL.WEIGHTS", str(tmp_path / "tiny.pth")]
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as info:
        load_tool("flash_to_ambient").main(argv)
    assert "1 flash image(s) not translated" in str(info.value)
    assert "tiny.png: image of 12x10 pixels is smaller than 16x16" in str(info.value)
    assert cv2.imread(str(out / "Rooms_001_flash_output.png")).shape == (101, 333, 3)
    for name, panels in (("Toys_002", 2), ("Toys_003", 4)):
        assert cv2.imread(str(out / f"{name}_flash_output.png")).shape == (40, 56, 3)
        grid = cv2.imread(str(out / f"{name}_flash_grid.png"))
        assert panels * 56 <= grid.shape[1] < (panels + 1) * 56, name
    assert "Toys_002_ambient.png: ambient image of 40x56, flash image of 56x40" in caplog.text
    assert not (out / "tiny_output.png").exists()

    # --scale config: the network runs at RESIZE, the output still has the photo's size.
    for f in inputs.glob("t*.png"):
        f.unlink()
    load_tool("flash_to_ambient").main(
        argv[:5] + [str(tmp_path / "out2"), "--scale", "config"] + argv[6:]
    )
    assert cv2.imread(str(tmp_path / "out2" / "Rooms_001_flash_output.png")).shape == (101, 333, 3)
