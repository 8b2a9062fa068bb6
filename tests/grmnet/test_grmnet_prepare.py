"""datasets/prepare_sketchyscene_matching.py: --check reads every file, manifest, exit codes."""

import importlib.util
import json

import cv2
import numpy as np
import scipy.io

from d2common.testing import repo_root

SCRIPT = repo_root() / "datasets" / "prepare_sketchyscene_matching.py"


def _main(argv):
    spec = importlib.util.spec_from_file_location("prepare_sketchyscene_matching", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def _release(root, keys, size=24):
    """A SketchyScene release (test split) and a SketchyScene-Matching folder for ``keys``."""
    release, matching = root / "SketchyScene", root / "Matching"
    for split in ("train", "val", "test"):
        for sub in ("DRAWING_GT", "CLASS_GT", "INSTANCE_GT"):
            (release / split / sub).mkdir(parents=True)
    matching.mkdir()
    entries = []
    for key in keys:
        inst = np.zeros((size, size), np.uint16)
        inst[2:10, 2:10], inst[12:20, 4:20] = 1, 2
        cls = np.where(inst > 0, 5, 0).astype(np.uint8)
        test = release / "test"
        scipy.io.savemat(str(test / "CLASS_GT" / f"sample_{key}_class.mat"), {"CLASS_GT": cls})
        scipy.io.savemat(
            str(test / "INSTANCE_GT" / f"sample_{key}_instance.mat"), {"INSTANCE_GT": inst}
        )
        drawing = np.full((size, size, 3), 255, np.uint8)
        drawing[inst > 0] = 0
        assert cv2.imwrite(str(test / "DRAWING_GT" / f"L0_sample{key}.png"), drawing)
        entries.append({"key": key, "sen_instIdx_map": {"the car": [0], "two cars": [0, 1]}})
    (matching / "sentence_instance_test.json").write_text(json.dumps(entries))
    for split in ("train", "val"):
        (matching / f"sentence_instance_{split}.json").write_text("[]")
    (matching / "vocab.txt").write_text("<pad>\n<unk>\nthe\ncar\n")
    return release, matching


def test_check_reads_drawings_and_matrices_and_reports_each_bad_sketch(tmp_path, capsys):
    release, matching = _release(tmp_path, [1, 2, 3, 4, 5])
    drawings = release / "test" / "DRAWING_GT"
    data = (drawings / "L0_sample2.png").read_bytes()
    (drawings / "L0_sample2.png").write_bytes(data[: len(data) // 2])  # truncated drawing
    (drawings / "L0_sample3.png").unlink()  # missing drawing
    small = np.full((20, 24, 3), 255, np.uint8)
    assert cv2.imwrite(str(drawings / "L0_sample4.png"), small)  # drawing vs matrices
    (release / "test" / "CLASS_GT" / "sample_5_class.mat").write_bytes(b"MATLAB 5.0 garbage")
    target = tmp_path / "sketchyscene"
    args = ["--sketchyscene", str(release), "--matching", str(matching), "--target", str(target)]
    assert _main(args) == 1
    out = capsys.readouterr().out
    assert "13 written, 0 already there, 0 failed" in out  # 9 links, 4 copies
    assert "test: 1 / 5 sketches readable, 2 / 10 (sketch, expression) pairs usable" in out
    assert "L0_sample2.png: truncated or corrupt image" in out
    assert "L0_sample3.png: file not found" in out
    assert "sample_4_instance.mat: label of size 24x24 does not match its image" in out
    assert "sample_5_class.mat" in out
    assert "4 unusable file(s)" in out
    # Check only, on the assembled layout: same verdict.
    assert _main(["--check", "--target", str(target), "--splits", "test"]) == 1


def test_assemble_is_rerunnable_and_refuses_other_sources(tmp_path, capsys):
    release, matching = _release(tmp_path, [7])
    target = tmp_path / "sketchyscene"
    args = ["--sketchyscene", str(release), "--matching", str(matching), "--target", str(target)]
    assert _main(args) == 0
    assert "test: 1 / 1 sketches readable, 2 / 2" in capsys.readouterr().out
    assert _main(args) == 0
    assert "0 written, 13 already there, 0 failed" in capsys.readouterr().out
    other = tmp_path / "other"
    release.rename(other)
    moved = ["--sketchyscene", str(other), "--matching", str(matching), "--target", str(target)]
    assert _main(moved) == 2
    assert "sketchyscene:" in capsys.readouterr().err
    assert _main(moved + ["--overwrite"]) == 0
    assert (target / "test" / "DRAWING_GT").resolve() == (other / "test" / "DRAWING_GT")
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["params"]["sketchyscene"] == str(other)
