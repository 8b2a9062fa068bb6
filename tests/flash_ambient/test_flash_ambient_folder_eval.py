"""tools/evaluate_flash_ambient.py: a folder of predictions scored against the FAID ambients."""

import csv
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from d2common.testing import load_tool, shared_data


def _predictions(tmp_path):
    """The flash images as predictions, under the three naming styles the tool accepts."""
    samples = shared_data("faid_samples")
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(samples / "People_014_flash.png", pred / "People_014_flash.png")
    shutil.copy(samples / "People_150_flash.png", pred / "People_150_flash_output.png")
    shutil.copy(samples / "Objects_148_flash.png", pred / "Objects_148.png")
    return samples, pred


def _run(samples, pred, out, *extra):
    argv = ["--predictions", str(pred), "--images", str(samples), "--output", str(out)]
    return load_tool("evaluate_flash_ambient").main(argv + list(extra))


def test_scores_every_pair_like_skimage(tmp_path):
    samples, pred = _predictions(tmp_path)
    results = _run(samples, pred, tmp_path / "out")
    with open(tmp_path / "out" / "per_image_metrics.csv") as f:
        rows = {r["image_id"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["Objects_148", "People_014", "People_150"]
    assert list(next(iter(rows.values()))) == [
        "image_id", "PSNR", "SSIM_rgb_gaussian", "SSIM_gray_uniform7"
    ]  # fmt: skip
    for pair, row in rows.items():
        flash = np.asarray(Image.open(samples / f"{pair}_flash.png").convert("RGB"))
        ambient = np.asarray(Image.open(samples / f"{pair}_ambient.png").convert("RGB"))
        gray = [np.asarray(Image.fromarray(x).convert("L")) for x in (flash, ambient)]
        expected = {
            "PSNR": peak_signal_noise_ratio(ambient, flash, data_range=255),
            "SSIM_rgb_gaussian": structural_similarity(
                ambient, flash, gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False, data_range=255, channel_axis=-1,
            ),  # fmt: skip
            "SSIM_gray_uniform7": structural_similarity(gray[1], gray[0], data_range=255),
        }
        for key, value in expected.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-9), (pair, key)
    assert results["records"]["evaluated"] == 3
    assert (tmp_path / "out" / "results.json").exists()


def test_missing_predictions_are_an_error_listing_them(tmp_path):
    samples, pred = _predictions(tmp_path)
    (pred / "People_150_flash_output.png").unlink()
    (pred / "Objects_148.png").unlink()
    with pytest.raises(SystemExit, match="no prediction for 2 of 3 pairs: Objects_148, People_150"):
        _run(samples, pred, tmp_path / "out")


def test_duplicates_and_sizes(tmp_path):
    samples, pred = _predictions(tmp_path)
    shutil.copy(pred / "Objects_148.png", pred / "Objects_148_output.png")
    with pytest.raises(SystemExit, match="are both predictions of pair Objects_148"):
        _run(samples, pred, tmp_path / "out")
    (pred / "Objects_148_output.png").unlink()
    small = cv2.imread(str(pred / "Objects_148.png"))
    cv2.imwrite(str(pred / "Objects_148.png"), cv2.resize(small, (120, 160)))
    with pytest.raises(SystemExit, match="Objects_148.png: prediction of 120x160, target"):
        _run(samples, pred, tmp_path / "out")
    results = _run(samples, pred, tmp_path / "out", "--resize-predictions")
    assert results["records"]["evaluated"] == 3
