"""The evaluator against scikit-image on the real FAID samples (identity prediction)."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from d2common.testing import shared_data
from flash_ambient.data import FlashAmbientDatasetMapper, load_faid_pairs
from flash_ambient.evaluation import FlashAmbientEvaluator, quantize


def test_identity_on_real_faid_samples_matches_skimage(tmp_path):
    dicts = load_faid_pairs(str(shared_data("faid_samples")))
    mapper = FlashAmbientDatasetMapper(False, resize=(320, 240))
    evaluator = FlashAmbientEvaluator(None, "faid_samples", str(tmp_path))
    evaluator.reset()
    expected = []
    for d in dicts:
        inputs = mapper(d)
        evaluator.process([inputs], [{"ambient": inputs["image"].float() / 255.0}])
        flash = np.asarray(Image.open(d["file_name"]).convert("RGB"))
        ambient = np.asarray(Image.open(d["ambient_file_name"]).convert("RGB"))
        gray = [np.asarray(Image.fromarray(x).convert("L")) for x in (flash, ambient)]
        expected.append(
            [
                peak_signal_noise_ratio(ambient, flash, data_range=255),
                structural_similarity(
                    ambient,
                    flash,
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                    data_range=255,
                    channel_axis=-1,
                ),  # fmt: skip
                structural_similarity(gray[1], gray[0], data_range=255, win_size=7),
            ]
        )
    results = evaluator.evaluate()["flash_ambient"]
    names = ["PSNR", "SSIM_rgb_gaussian", "SSIM_gray_uniform7"]
    for i, name in enumerate(names):
        assert results[name] == pytest.approx(np.mean([e[i] for e in expected]), abs=1e-9)
    with open(tmp_path / "per_image_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["image_id"] for r in rows] == [d["image_id"] for d in dicts]
    assert float(rows[0]["PSNR"]) == pytest.approx(expected[0][0])
    assert 5 < results["PSNR"] < 40 and 0 < results["SSIM_gray_uniform7"] < 1


def test_quantize_rounds_and_clamps():
    x = torch.tensor([[[-0.1, 0.0, 0.51 / 255, 1.49 / 255, 1.0, 1.2]]])
    assert quantize(x).tolist() == [[[0, 0, 1, 1, 255, 255]]]


def test_size_mismatch_is_a_clear_error():
    evaluator = FlashAmbientEvaluator(None, "x")
    inputs = {"file_name": "a_flash.png", "ambient": torch.zeros(3, 8, 8, dtype=torch.uint8)}
    with pytest.raises(ValueError, match="a_flash.png.*differ in size"):
        evaluator.process([inputs], [{"ambient": torch.zeros(3, 8, 9)}])
