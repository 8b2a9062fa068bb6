"""The Lv et al. low-light synthesis against a per-pixel reference and its noise model."""

import logging

import cv2
import numpy as np
import pytest
from scipy.ndimage import convolve

from lowlight_nl.synthesis import (
    CameraResponses,
    LowLightParams,
    LowLightRanges,
    LowLightSynthesizer,
    darken,
    load_camera_responses,
    noise_std,
)
from lowlight_nl.synthesis import camera_response as camera_response_module

try:
    from d2common.testing import shared_data
except ImportError:  # pragma: no cover
    shared_data = None


@pytest.fixture(scope="module")
def dorf():
    if shared_data is None:
        pytest.skip("d2common is not importable")
    return CameraResponses.from_dorf(str(shared_data("camera_response")))


def _params(**kw):
    base = dict(camera=7, alpha=1.0, beta=1.0, gamma=1.0, sig_s=0.0, sig_c=0.0)
    base.update(kw)
    return LowLightParams(**base)


def reference_pipeline(image: np.ndarray, crf: CameraResponses, p: LowLightParams) -> np.ndarray:
    """Noise-free pipeline, per pixel in float64, with an independent bilinear demosaic."""
    dark = darken(image.astype(np.float64) / 255.0, p)
    irr = crf.inverse(p.camera, dark)
    h, w, _ = irr.shape
    masks = np.zeros((h, w, 3))
    masks[0::2, 0::2, 0] = 1
    masks[0::2, 1::2, 1] = masks[1::2, 0::2, 1] = 1
    masks[1::2, 1::2, 2] = 1
    raw = (irr * masks).sum(axis=2)
    k_rb = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    k_g = np.array([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])
    rgb = np.stack(
        [convolve(raw * masks[..., c], k_g if c == 1 else k_rb, mode="mirror") for c in range(3)],
        axis=2,
    )
    return np.rint(np.clip(crf.forward(p.camera, rgb), 0, 1) * 255).astype(np.uint8)


def test_noise_free_pipeline_matches_per_pixel_reference(dorf):
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8), (7, 7), 2)
    synth = LowLightSynthesizer(dorf)
    for p in [_params(), _params(camera=150, alpha=0.93, beta=0.6, gamma=2.7)]:
        ours = synth.synthesize(image, p, rng).astype(int)
        ref = reference_pipeline(image, dorf, p).astype(int)
        interior = (slice(2, -2), slice(2, -2))
        assert np.abs(ours[interior] - ref[interior]).max() <= 1


def test_bayer_layout_keeps_colours(dorf):
    for colour in [(200, 40, 10), (10, 180, 60), (30, 60, 220)]:
        image = np.empty((16, 16, 3), np.uint8)
        image[:] = colour
        out = LowLightSynthesizer(dorf).synthesize(image, _params(), np.random.default_rng(0))
        np.testing.assert_allclose(out[4:-4, 4:-4].reshape(-1, 3).mean(0), colour, atol=1.5)


def test_no_colour_cast_on_grey(dorf):
    image = np.full((512, 512, 3), 150, np.uint8)
    synth = LowLightSynthesizer(dorf)
    for camera in (0, 100, 200):
        p = _params(camera=camera, alpha=0.95, beta=0.7, gamma=2.5, sig_s=0.1, sig_c=0.03)
        out = synth.synthesize(image, p, np.random.default_rng(camera)).astype(np.float64)
        means = out[2:-2, 2:-2].reshape(-1, 3).mean(0)
        # R and B see the same noise; G keeps 0.625 of the raw noise variance after the demosaic
        # against 0.5625, so the CRF's curvature (Jensen gap) moves it by ~1% (a cast: tens of %).
        assert abs(means[0] - means[2]) < 0.5 and np.ptp(means) < 0.025 * means.mean(), means
        clean = synth.synthesize(image, _params(camera=camera, gamma=2.5), None)
        assert np.all(clean == clean[..., :1])


def test_noise_std_in_flat_region_matches_model(dorf):
    """Raw std sqrt(L sig_s^2 + sig_c^2), scaled by the bilinear demosaic and the CRF slope."""
    p = _params(camera=42, alpha=0.95, beta=0.8, gamma=1.8, sig_s=0.06, sig_c=0.01)
    grey = 170
    image = np.full((256, 256, 3), grey, np.uint8)
    out = LowLightSynthesizer(dorf).synthesize(image, p, np.random.default_rng(3))
    irradiance = float(dorf.inverse(p.camera, darken(np.array(grey / 255.0), p)))
    slope = dorf.forward(p.camera, irradiance + 1e-3) - dorf.forward(p.camera, irradiance - 1e-3)
    slope = float(slope) / 2e-3
    sigma = float(noise_std(np.array(irradiance), p))
    # Averaged over the 4 Bayer sites: R/B keep 1, 1/2, 1/2, 1/4 of the variance, G 1, 1, 1/4, 1/4.
    demosaic_factor = np.array([0.5625, 0.625, 0.5625])
    predicted = np.sqrt((255 * slope * sigma) ** 2 * demosaic_factor + 1 / 12)
    measured = out[4:-4, 4:-4].reshape(-1, 3).astype(np.float64).std(0)
    np.testing.assert_allclose(measured, predicted, rtol=0.12)


def _mean_and_noise(synth, images, **kw):
    """Mean brightness and std of (noisy - noise-free) over images."""
    means, noise = [], []
    for i, img in enumerate(images):
        p = _params(camera=60, alpha=0.95, beta=0.75, gamma=2.5, sig_s=0.08, sig_c=0.03)
        p = LowLightParams(**{**p.as_dict(), **kw})
        noisy = synth.synthesize(img, p, np.random.default_rng(i)).astype(np.float64)
        clean = synth.synthesize(img, _params(**{**p.as_dict(), "sig_s": 0, "sig_c": 0}), None)
        means.append(noisy.mean())
        noise.append((noisy - clean).std())
    return np.mean(means), np.mean(noise)


def test_brightness_and_noise_follow_parameters_on_real_coco(dorf):
    folder = shared_data("tiny_coco") / "val2017"
    images = [cv2.imread(str(f))[::2, ::2, ::-1].copy() for f in sorted(folder.glob("*.jpg"))[:4]]
    synth = LowLightSynthesizer(dorf)
    base_mean, base_noise = _mean_and_noise(synth, images)
    darker_gamma, _ = _mean_and_noise(synth, images, gamma=4.0)
    darker_beta, _ = _mean_and_noise(synth, images, beta=0.5)
    brighter_alpha, _ = _mean_and_noise(synth, images, alpha=1.0, beta=1.0)
    _, more_shot = _mean_and_noise(synth, images, sig_s=0.15)
    _, more_read = _mean_and_noise(synth, images, sig_c=0.06)
    _, no_noise = _mean_and_noise(synth, images, sig_s=0.0, sig_c=0.0)
    assert darker_gamma < base_mean and darker_beta < base_mean < brighter_alpha
    assert more_shot > base_noise and more_read > base_noise and no_noise == 0.0
    original_mean = np.mean([img.mean() for img in images])
    assert base_mean < 0.6 * original_mean


def test_reproducible_per_key_and_sampled_in_ranges(dorf):
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    synth = LowLightSynthesizer(dorf, seed=5)
    out_a, p_a = synth(image, key="000000001.jpg")
    out_b, p_b = LowLightSynthesizer(dorf, seed=5)(image, key="000000001.jpg")
    out_c, p_c = synth(image, key="000000002.jpg")
    assert p_a == p_b and out_a.tobytes() == out_b.tobytes()
    assert p_a != p_c and out_a.tobytes() != out_c.tobytes()
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = LowLightRanges().sample(rng, dorf.num_curves)
        assert 0 <= p.camera <= 200 and 0.9 <= p.alpha <= 1 and 0.5 <= p.beta <= 1
        assert 1.5 <= p.gamma <= 5 and 0 <= p.sig_s <= 0.16 and 0 <= p.sig_c <= 0.06


def test_dorf_curves_and_inverse(dorf):
    assert dorf.num_curves == 201
    x = np.linspace(0.01, 0.99, 50)
    for k in (0, 77, 200):
        np.testing.assert_allclose(dorf.inverse(k, dorf.forward(k, x)), x, atol=2e-3)
        lut = dorf.forward_lut_uint8(k)
        assert lut.shape == (65536,) and lut[0] == 0 and lut[-1] == 255
        assert np.all(np.diff(lut.astype(int)) >= 0)


def test_parametric_fallback_warns_once(monkeypatch):
    monkeypatch.delenv("LOWLIGHT_NL_CRF", raising=False)
    camera_response_module._cached_parametric.cache_clear()
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # detectron2's setup_logger may stop propagation to caplog
    camera_response_module.logger.addHandler(handler)
    try:
        first = load_camera_responses()
        second = load_camera_responses()
    finally:
        camera_response_module.logger.removeHandler(handler)
    assert first is second and first.source == "parametric" and first.num_curves == 201
    assert sum("parametric" in r.getMessage() for r in records) == 1
    out, _ = LowLightSynthesizer(first)(np.full((8, 8, 3), 128, np.uint8), key=0)
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)


def test_bad_inputs_fail_clearly(tmp_path):
    corrupt = tmp_path / "201_CRF_data.mat"
    corrupt.write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="201_CRF_data.mat"):
        CameraResponses.from_dorf(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CameraResponses.from_dorf(str(tmp_path / "missing"))
    synth = LowLightSynthesizer(CameraResponses.parametric(num_curves=3))
    with pytest.raises(TypeError, match="uint8"):
        synth(np.zeros((8, 8, 3), np.float32), key=0)
    with pytest.raises(ValueError, match="range of gamma"):
        LowLightRanges(gamma=(5.0, 1.5))
