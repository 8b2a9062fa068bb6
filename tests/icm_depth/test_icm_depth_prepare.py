"""datasets/prepare_icm_depth_kitti_masks.py: bad images fail alone, manifest, reruns, exits."""

import importlib.util
import json

import cv2
import numpy as np
import pytest

from d2common.testing import repo_root
from icm_depth.data.formats import read_instance_png

SCRIPT = repo_root() / "datasets" / "prepare_icm_depth_kitti_masks.py"
RELS = ["2011_09_26/d/image_02/data/0000000001.png", "2011_09_26/d/image_02/data/0000000002.png"]


def _module():
    spec = importlib.util.spec_from_file_location("prepare_icm_depth_kitti_masks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main(argv, predict):
    return _module().main(argv, predict=predict)


def _predict(image):
    """A car (score 0.9) on the left half, a person (score 0.3) on the bottom rows."""
    h, w = image.shape[:2]
    masks = np.zeros((2, h, w), bool)
    masks[0, :, : w // 2] = True
    masks[1, h - 2 :] = True
    return masks, np.array([0.9, 0.3]), np.array([2, 0])


def _kitti(root):
    for i, rel in enumerate(RELS):
        (root / "raw" / rel).parent.mkdir(parents=True, exist_ok=True)
        image = np.random.default_rng(i).integers(0, 255, (6, 8, 3), dtype=np.uint8)
        assert cv2.imwrite(str(root / "raw" / rel), image)
    split = root / "split.txt"
    split.write_text("".join(f"{rel} None 721.5\n" for rel in RELS))
    return split


def test_masks_rerun_refusal_overwrite_and_a_bad_image(tmp_path, capsys):
    root = tmp_path / "kitti"
    split = _kitti(root)
    bad = root / "raw" / RELS[1]
    bad.write_bytes(bad.read_bytes()[:40])  # truncated PNG
    args = ["--config-file", "m.yaml", "--weights", "m.pkl", "--split", str(split)]
    args += ["--root", str(root)]
    assert _main(args, _predict) == 1
    printed = capsys.readouterr().out
    assert "1 written, 0 already there, 1 failed" in printed and "0000000002.png" in printed
    stats = json.loads((root / "instances" / "instance_stats.json").read_text())
    assert stats == {
        RELS[0]: {"detections": 2, "instances": 1, "classes": {"2": 1}, "coverage": 0.5}
    }
    assert "1 frames: 1.00 instances per frame (median 1, max 1), 0 frames without" in printed
    mask = cv2.imread(str(root / "instances" / RELS[0]), cv2.IMREAD_UNCHANGED)
    expected = np.zeros((6, 8), np.uint16)
    expected[:, :4] = 1  # the person is below the score threshold
    assert mask.dtype == np.uint16 and (mask == expected).all()
    assert (read_instance_png(str(root / "instances" / RELS[0])) == expected).all()
    assert not (root / "instances" / RELS[1]).exists()

    assert _main(args, _predict) == 1
    assert "0 written, 1 already there, 1 failed" in capsys.readouterr().out

    assert _main(args + ["--score-thresh", "0.2"], _predict) == 2
    assert "score_thresh: 0.5 -> 0.2" in capsys.readouterr().err
    assert _main(args + ["--score-thresh", "0.2", "--overwrite"], _predict) == 1
    mask = cv2.imread(str(root / "instances" / RELS[0]), cv2.IMREAD_UNCHANGED)
    expected[4:, 4:] = 2
    assert (mask == expected).all()
    manifest = json.loads((root / "instances" / "manifest.json").read_text())
    assert manifest["params"]["score_thresh"] == 0.2 and len(manifest["failed"]) == 1
    stats = json.loads((root / "instances" / "instance_stats.json").read_text())
    assert stats[RELS[0]] == {
        "detections": 2, "instances": 2, "classes": {"2": 1, "0": 1}, "coverage": round(32 / 48, 6)
    }  # fmt: skip


def test_stats_of_masks_written_before_statistics_existed(tmp_path, capsys):
    root = tmp_path / "kitti"
    split = _kitti(root)
    args = ["--config-file", "m.yaml", "--weights", "m.pkl", "--split", str(split)]
    args += ["--root", str(root)]
    assert _main(args, _predict) == 0
    (root / "instances" / "instance_stats.json").unlink()
    capsys.readouterr()
    assert _main(args, _predict) == 0
    stats = json.loads((root / "instances" / "instance_stats.json").read_text())
    assert stats[RELS[1]] == {"detections": None, "instances": 1, "classes": None, "coverage": 0.5}
    assert "2 frames: 1.00 instances per frame" in capsys.readouterr().out


def test_config_extension_adds_a_projects_keys(tmp_path, monkeypatch, capsys):
    (tmp_path / "icm_ext_probe.py").write_text(
        "from detectron2.config import CfgNode as CN\n"
        "def add_probe_config(cfg):\n"
        "    cfg.MODEL.PROBE = CN()\n"
        "    cfg.MODEL.PROBE.NUM_QUERIES = 100\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "probe.yaml"
    config.write_text("MODEL:\n  PROBE:\n    NUM_QUERIES: 200\n")
    module = _module()
    argv = ["--config-file", str(config), "--weights", "w.pkl", "--split", "s.txt"]
    cfg = module.build_cfg(
        module.parse_args(argv + ["--config-extension", "icm_ext_probe:add_probe_config"])
    )
    assert cfg.MODEL.PROBE.NUM_QUERIES == 200 and cfg.MODEL.WEIGHTS == "w.pkl"
    with pytest.raises(KeyError):
        module.build_cfg(module.parse_args(argv))  # plain get_cfg(): the key is unknown
    for spec, message in [
        ("icm_no_such_module:f", "cannot import"),
        ("icm_ext_probe:missing", "has no function missing"),
        ("add_probe_config", "MODULE:FUNCTION"),
    ]:
        with pytest.raises(ValueError, match=message):
            module.load_config_extensions([spec])
    root = tmp_path / "kitti"
    split = _kitti(root)
    bad = ["--config-file", str(config), "--weights", "w.pkl", "--split", str(split)]
    bad += ["--root", str(root), "--config-extension", "icm_ext_probe:missing"]
    assert module.main(bad) == 2
    assert "has no function missing" in capsys.readouterr().err
