"""datasets/prepare_coco_lowlight.py: bad images, reruns, the manifest, exit codes, start-up."""

import importlib.util
import json
import subprocess
import sys

import cv2
import numpy as np

from d2common.testing import repo_root, shared_data

SCRIPT = repo_root() / "datasets" / "prepare_coco_lowlight.py"
SPLIT = "val2017"


def _script():
    spec = importlib.util.spec_from_file_location("prepare_coco_lowlight", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _coco_folder(root, sizes, seed=0):
    """A COCO-layout split of random JPEGs: {file name: (h, w)} -> (root, [file names])."""
    rng = np.random.default_rng(seed)
    (root / SPLIT).mkdir(parents=True)
    (root / "annotations").mkdir()
    images = []
    for i, (name, (h, w)) in enumerate(sorted(sizes.items())):
        # Smooth content: JPEG keeps it, so a decoded copy is close to the original.
        small = rng.integers(0, 255, (max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
        image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        assert cv2.imwrite(str(root / SPLIT / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": i + 1, "file_name": name, "height": h, "width": w})
    ann = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    (root / "annotations" / f"instances_{SPLIT}.json").write_text(json.dumps(ann))
    return root, [im["file_name"] for im in images]


def _run(coco, out, *extra):
    args = ["--coco-root", str(coco), "--output", str(out), "--splits", SPLIT, "--workers", "1"]
    return _script().main(args + ["--quiet", *extra])


def _manifest(out):
    return json.loads((out / f"manifest_{SPLIT}.json").read_text())


def test_truncated_and_tiny_images_fail_alone_and_the_exit_status_says_so(tmp_path, capsys):
    coco, names = _coco_folder(
        tmp_path / "coco",
        {"a.jpg": (40, 56), "b.jpg": (48, 40), "c.jpg": (32, 32), "d.jpg": (1, 1)},
    )
    data = (coco / SPLIT / "b.jpg").read_bytes()
    (coco / SPLIT / "b.jpg").write_bytes(data[: len(data) * 2 // 3])
    # OpenCV decodes the truncated file with a warning only: a header or cv2 read lets it pass.
    assert cv2.imread(str(coco / SPLIT / "b.jpg")) is not None
    out = tmp_path / "out"
    assert _run(coco, out) == 1
    printed = capsys.readouterr().out
    assert "2 written, 0 already there, 2 failed" in printed
    assert "b.jpg: truncated or corrupt image" in printed and "d.jpg: image of size 1x1" in printed
    assert sorted(p.name for p in (out / SPLIT).iterdir()) == ["a.jpg", "c.jpg"]
    manifest = _manifest(out)
    assert manifest["finished"] and manifest["written"] == 2 and manifest["params"]["seed"] == 0
    assert sorted(f["file"].rsplit("/", 1)[-1] for f in manifest["failed"]) == ["b.jpg", "d.jpg"]
    params = json.loads((out / f"params_{SPLIT}.json").read_text())
    assert sorted(params["images"]) == ["a.jpg", "c.jpg"] and params["seed"] == 0
    assert (out / "annotations" / f"instances_{SPLIT}.json").read_bytes() == (
        coco / "annotations" / f"instances_{SPLIT}.json"
    ).read_bytes()
    # A rerun retries the failures only, and still reports them.
    assert _run(coco, out) == 1
    assert "0 written, 2 already there, 2 failed" in capsys.readouterr().out


def test_rerun_with_other_parameters_refuses_and_overwrite_regenerates(tmp_path, capsys):
    coco, names = _coco_folder(tmp_path / "coco", {"a.jpg": (40, 56), "b.jpg": (24, 30)})
    out = tmp_path / "out"
    assert _run(coco, out, "--seed", "0") == 0
    assert "2 written, 0 already there, 0 failed" in capsys.readouterr().out
    first = {n: (out / SPLIT / n).read_bytes() for n in names}
    params_before = (out / f"params_{SPLIT}.json").read_bytes()

    assert _run(coco, out, "--seed", "0") == 0
    assert "0 written, 2 already there, 0 failed" in capsys.readouterr().out

    assert _run(coco, out, "--seed", "1") == 2
    err = capsys.readouterr().err
    assert "seed: 0 -> 1" in err and "--overwrite" in err
    assert (out / f"params_{SPLIT}.json").read_bytes() == params_before
    assert _manifest(out)["params"]["seed"] == 0
    assert {n: (out / SPLIT / n).read_bytes() for n in names} == first

    assert _run(coco, out, "--seed", "1", "--overwrite") == 0
    assert "2 written, 0 already there" in capsys.readouterr().out
    assert all((out / SPLIT / n).read_bytes() != first[n] for n in names)
    assert json.loads((out / f"params_{SPLIT}.json").read_text())["seed"] == 1
    assert _manifest(out)["params"]["seed"] == 1


def test_rerun_without_the_camera_responses_refuses(tmp_path, capsys):
    crf = str(shared_data("camera_response"))
    coco, _ = _coco_folder(tmp_path / "coco", {"a.jpg": (16, 24)})
    out = tmp_path / "out"
    assert _run(coco, out, "--crf", crf) == 0
    capsys.readouterr()
    assert _run(coco, out) == 2
    err = capsys.readouterr().err
    assert "crf: " in err and "-> 'parametric'" in err


def test_output_without_a_manifest_is_checked_against_its_params_file(tmp_path, capsys):
    coco, _ = _coco_folder(tmp_path / "coco", {"a.jpg": (16, 24)})
    out = tmp_path / "out"
    (out / SPLIT).mkdir(parents=True)
    (out / f"params_{SPLIT}.json").write_text(json.dumps({"seed": 3, "crf": "parametric"}))
    assert _run(coco, out) == 2
    assert "seed 3" in capsys.readouterr().err and not (out / f"manifest_{SPLIT}.json").exists()
    assert _run(coco, out, "--seed", "3") == 0


def test_parallel_workers_write_the_same_bytes(tmp_path):
    coco, names = _coco_folder(tmp_path / "coco", {f"{i}.jpg": (24, 32) for i in range(3)})
    assert _run(coco, tmp_path / "serial") == 0
    args = ["--coco-root", str(coco), "--output", str(tmp_path / "pool"), "--splits", SPLIT]
    # As a script: the workers find the module's functions by name.
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--workers", "2", "--quiet"], capture_output=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for n in names:
        assert (tmp_path / "serial" / SPLIT / n).read_bytes() == (
            tmp_path / "pool" / SPLIT / n
        ).read_bytes()


def _imported_modules(args):
    """Top-level modules a subprocess running the script imported (from ``-X importtime``)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        cwd=str(repo_root()),
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert lines, proc.stderr
    return proc, {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines}


def test_script_imports_neither_torch_nor_detectron2(tmp_path):
    proc, modules = _imported_modules(["--help"])
    assert proc.returncode == 0 and "--overwrite" in proc.stdout
    assert "torch" not in modules and "detectron2" not in modules
    coco, _ = _coco_folder(tmp_path / "coco", {"a.jpg": (16, 24)})
    args = ["--coco-root", str(coco), "--output", str(tmp_path / "out"), "--splits", SPLIT]
    proc, modules = _imported_modules(args + ["--workers", "1", "--quiet"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cv2" in modules and "lowlight_nl" in modules  # the check itself sees imports
    assert "torch" not in modules and "detectron2" not in modules
    assert (tmp_path / "out" / SPLIT / "a.jpg").is_file()
