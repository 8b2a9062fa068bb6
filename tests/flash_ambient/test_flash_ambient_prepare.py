"""datasets/prepare_flash_ambient_faid.py: bad pairs fail alone, manifest, reruns, exit codes."""

import importlib.util
import json

import cv2
import numpy as np

from d2common.testing import repo_root

SCRIPT = repo_root() / "datasets" / "prepare_flash_ambient_faid.py"


def _main(argv):
    spec = importlib.util.spec_from_file_location("prepare_flash_ambient_faid", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def _faid(folder, pairs):
    """Writes ``{name: (flash (h, w), ambient (h, w))}`` as random PNG pairs."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, sizes in pairs.items():
        for kind, (h, w) in zip(("flash", "ambient"), sizes):
            image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            assert cv2.imwrite(str(folder / f"{name}_{kind}.png"), image)
    return folder


def test_bad_pairs_fail_alone_with_reasons_and_exit_status(tmp_path, capsys):
    src = _faid(
        tmp_path / "src",
        {
            "People_001": ((40, 32), (40, 32)),
            "People_002": ((40, 32), (40, 32)),  # truncated below
            "People_003": ((40, 32), (32, 40)),  # rotated ambient: not the same photograph
            "People_004": ((8, 8), (8, 8)),  # too small for the generators
        },
    )
    data = (src / "People_002_ambient.png").read_bytes()
    (src / "People_002_ambient.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "faid"
    assert _main([str(src), str(out), "--size", "32", "24"]) == 1
    printed = capsys.readouterr().out
    assert "1 written, 0 already there, 3 failed" in printed
    assert "People_002_ambient.png: truncated or corrupt image" in printed
    assert "People_003_ambient.png: ambient image of size 32x40 does not match" in printed
    assert "People_004_flash.png: image of size 8x8 is too small" in printed
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "People_001_ambient.png",
        "People_001_flash.png",
    ]
    assert cv2.imread(str(out / "images" / "People_001_flash.png")).shape == (32, 24, 3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["size"] == [32, 24] and len(manifest["failed"]) == 3
    splits = [(out / "splits" / f"{s}.txt").read_text().split() for s in ("train", "test")]
    assert sorted(sum(splits, [])) == ["People_001"]


def test_rerun_refuses_other_parameters_and_keeps_drawn_splits(tmp_path, capsys):
    pairs = {f"Objects_{i:03d}": ((24, 32), (24, 32)) for i in range(20)}
    src = _faid(tmp_path / "src", pairs)
    out = tmp_path / "faid"
    assert _main([str(src), str(out), "--size", "32", "24"]) == 0
    test_split = (out / "splits" / "test.txt").read_text()
    assert len(test_split.split()) == round(20 * 116 / 1085)
    capsys.readouterr()

    assert _main([str(src), str(out), "--size", "64", "48"]) == 2
    assert "size: [32, 24] -> [64, 48]" in capsys.readouterr().err
    assert cv2.imread(str(out / "images" / "Objects_000_flash.png")).shape[:2] == (24, 32)

    # A pair added later does not reshuffle the existing splits.
    _faid(tmp_path / "src" / "more", {"Objects_100": ((24, 32), (24, 32))})
    assert _main([str(src), str(out), "--size", "32", "24"]) == 0
    printed = capsys.readouterr().out
    assert "1 written, 20 already there, 0 failed" in printed and "Objects_100" in printed
    assert (out / "splits" / "test.txt").read_text() == test_split

    assert _main([str(src), str(out), "--size", "64", "48", "--overwrite"]) == 0
    assert "21 written, 0 already there" in capsys.readouterr().out
    assert cv2.imread(str(out / "images" / "Objects_000_flash.png")).shape[:2] == (48, 64)


def test_a_pair_name_found_twice_stops_before_writing(tmp_path, capsys):
    """Two source folders holding People_014: one copy would silently replace the other."""
    src = _faid(tmp_path / "src" / "a", {"People_014": ((24, 32), (24, 32))})
    _faid(tmp_path / "src" / "b", {"People_014": ((24, 32), (24, 32))})
    out = tmp_path / "faid"
    assert _main([str(src.parent), str(out)]) == 2
    err = capsys.readouterr().err
    assert "People_014" in err and str(tmp_path / "src" / "a") in err and not out.exists()


def test_dataset_lr_layout_defines_the_splits(tmp_path, capsys):
    """The authors' DATASET_LR/{train,test}: source and split definition at once."""
    lr = tmp_path / "DATASET_LR"
    _faid(lr / "train", {"People_001": ((24, 32),) * 2, "Toys_002": ((32, 24),) * 2})
    _faid(lr / "test", {"Plants_003": ((24, 32),) * 2})
    out = tmp_path / "faid"
    assert _main([str(lr), str(out), "--size", "32", "24", "--dataset-lr", str(lr)]) == 0
    splits = {s: (out / "splits" / f"{s}.txt").read_text().split() for s in ("train", "test")}
    assert splits == {"train": ["People_001", "Toys_002"], "test": ["Plants_003"]}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["dataset_lr"] == str(lr)

    _faid(tmp_path / "bad" / "train", {"People_001": ((24, 32),) * 2})
    _faid(tmp_path / "bad" / "test", {"People_001": ((24, 32),) * 2})
    capsys.readouterr()
    bad = str(tmp_path / "bad")
    assert _main([str(lr), str(tmp_path / "o2"), "--dataset-lr", bad]) == 2
    assert "pairs in both train and test: People_001" in capsys.readouterr().err
    assert _main([str(lr), str(tmp_path / "o3"), "--dataset-lr", str(lr / "train")]) == 2
    assert "DATASET_LR split folder" in capsys.readouterr().err
