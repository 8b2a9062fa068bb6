"""tools/convert_vgg16.py and tools/flash_to_ambient.py, called through their command lines."""

import importlib.util
import json

import cv2
import pytest
import torch
import torchvision
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from d2common.testing import load_tool, plugin_cfg, repo_root, shared_data

from ._tiny import TINY_OPTS


def test_convert_vgg16_loads_into_the_encoder(tmp_path, capsys):
    tool = load_tool("convert_vgg16")
    state_dict = torchvision.models.vgg16(weights=None).state_dict()
    assert len(tool.convert(state_dict)["model"]) == 26  # the full dict, classifier included
    # The file round trip leaves out the 500 MB classifier (the tool ignores it) to stay fast.
    source = tmp_path / "vgg16.pth"
    torch.save({k: v for k, v in state_dict.items() if k.startswith("features.")}, source)
    out = tmp_path / "converted.pth"
    tool.main([str(source), str(out)])
    assert "wrote 26 encoder tensors" in capsys.readouterr().out
    opts = ["MODEL.DEVICE", "cpu"]
    cfg = plugin_cfg("configs/FlashAmbient/flash_ambient_vgg16_1000ep_faid.yaml", opts)
    model = build_model(cfg)
    DetectionCheckpointer(model).load(str(out))
    encoder = model.generator.encoder.state_dict()
    assert len(encoder) == 26
    for key, value in encoder.items():
        assert torch.equal(value, state_dict[f"features.{key}"]), key

    bad = {k: v for k, v in state_dict.items() if not k.startswith("features.28")}
    with pytest.raises(KeyError, match="features.28.weight"):
        tool.convert(bad, "bad.pth")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(SystemExit, match="not a torchvision VGG-16"):
        tool.main([str(tmp_path / "partial.pth"), str(tmp_path / "x.pth")])
    with pytest.raises(SystemExit, match="nosuch.pth not found"):
        tool.main([str(tmp_path / "nosuch.pth"), str(tmp_path / "x.pth")])


def test_flash_to_ambient_on_real_samples(tmp_path):
    samples = shared_data("faid_samples")
    cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", TINY_OPTS)
    DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save("tiny")
    widths = TINY_OPTS[4:8]  # the tiny generator / discriminator widths
    load_tool("flash_to_ambient").main(
        [
            "--config-file", str(repo_root() / "configs/FlashAmbient/demo.yaml"),
            "--input", str(samples),
            "--output", str(tmp_path / "out"),
            "MODEL.DEVICE", "cpu", *map(str, widths), "MODEL.WEIGHTS", str(tmp_path / "tiny.pth"),
        ]
    )  # fmt: skip
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(outputs) == 6 and "People_014_flash_grid.png" in outputs
    grid = cv2.imread(str(tmp_path / "out" / "People_014_flash_grid.png"))
    output = cv2.imread(str(tmp_path / "out" / "People_014_flash_output.png"))
    flash = cv2.imread(str(samples / "People_014_flash.png"))
    assert output.shape == flash.shape  # the photo's own size, not the config's RESIZE
    assert grid.shape[1] >= 4 * output.shape[1]  # flash | output | ambient | attention


def test_prepare_faid_writes_resized_pairs_and_splits(tmp_path):
    samples = shared_data("faid_samples")
    train = tmp_path / "train.txt"
    train.write_text("People_014\nPeople_150\n")
    test = tmp_path / "test.txt"
    test.write_text("Objects_148\n")
    spec = importlib.util.spec_from_file_location(
        "prepare_flash_ambient_faid", repo_root() / "datasets" / "prepare_flash_ambient_faid.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "faid"
    module.main([str(samples), str(out), "--size", "64", "48", "--train-list", str(train)] +
                ["--test-list", str(test)])  # fmt: skip
    from flash_ambient.data import load_faid_pairs

    dicts = load_faid_pairs(str(out / "images"), str(out / "splits" / "train.txt"))
    assert [d["image_id"] for d in dicts] == ["People_014", "People_150"]
    assert all(sorted((d["width"], d["height"])) == [48, 64] for d in dicts)


def test_benchmark_runs_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    load_tool("benchmark_flash_ambient").main(
        ["--device", "cpu", "--repeat", "1", "--batch", "1", "--base-channels", "4"]
        + ["--json", str(out)]
    )
    results = json.loads(out.read_text())["results"]
    assert "gan_train_iteration_b1_224" in results
    assert all(v["wall_s"] > 0 for v in results.values())


def test_conditions_grid_on_real_samples(tmp_path, capsys):
    samples = shared_data("faid_samples")
    widths = [str(v) for v in TINY_OPTS[4:8]]  # the tiny generator / discriminator widths
    for seed in (0, 1):
        torch.manual_seed(seed)
        cfg = plugin_cfg("configs/FlashAmbient/demo.yaml", TINY_OPTS)
        DetectionCheckpointer(build_model(cfg), save_dir=str(tmp_path)).save(f"tiny_{seed}")
    config = str(repo_root() / "configs/FlashAmbient/demo.yaml")
    out = tmp_path / "grid.png"
    args = ["--input", str(samples), "--output", str(out), "--seed", "1", "--height", "64"]
    args += ["--model", f"A={config}@{tmp_path}/tiny_{{seed}}.pth", "--opts-A", *widths]
    args += ["--model", f"B={config}@{tmp_path}/tiny_0.pth", "--opts-B", *widths]
    load_tool("flash_conditions_grid").main(args)
    grid = cv2.imread(str(out))
    assert grid.shape == (3 * (64 + 22), 4 * 64, 3)  # a row per pair, square panels, titles
    table = json.loads((tmp_path / "grid.json").read_text())
    assert table["seed"] == 1 and set(table["psnr"]) == {"Objects_148", "People_014", "People_150"}
    from skimage.metrics import peak_signal_noise_ratio

    flash = cv2.imread(str(samples / "People_014_flash.png"))
    ambient = cv2.imread(str(samples / "People_014_ambient.png"))
    expected = peak_signal_noise_ratio(ambient, flash, data_range=255)
    assert abs(table["psnr"]["People_014"]["flash"] - expected) < 1e-9
    assert table["psnr"]["People_014"]["A"] != table["psnr"]["People_014"]["B"]  # seed 1 vs 0
    assert "| People_014 |" in capsys.readouterr().out

    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "Room_001_flash.png").write_bytes((samples / "People_014_flash.png").read_bytes())
    with pytest.raises(SystemExit, match="Room_001_flash.png has no"):
        load_tool("flash_conditions_grid").main(["--input", str(lonely)] + args[2:])
    with pytest.raises(SystemExit, match="tiny_7.pth not found"):
        load_tool("flash_conditions_grid").main(args + ["--seed", "7"])
