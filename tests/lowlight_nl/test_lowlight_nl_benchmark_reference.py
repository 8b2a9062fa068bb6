"""The synthesis benchmark's reference demosaic: colour-demosaicing's bilinear filter in numpy."""

import numpy as np
import pytest

from d2common.testing import load_tool


def _loop_demosaic(raw: np.ndarray) -> np.ndarray:
    """Bilinear RGGB demosaic pixel by pixel (neighbour averages), interior pixels only."""
    h, w = raw.shape
    out = np.full((h, w, 3), np.nan)
    for r in range(1, h - 1):
        for c in range(1, w - 1):
            cross = (raw[r - 1, c] + raw[r + 1, c] + raw[r, c - 1] + raw[r, c + 1]) / 4
            diag = raw[r - 1, c - 1] + raw[r - 1, c + 1] + raw[r + 1, c - 1] + raw[r + 1, c + 1]
            vert, horiz = (raw[r - 1, c] + raw[r + 1, c]) / 2, (raw[r, c - 1] + raw[r, c + 1]) / 2
            v = raw[r, c]
            if r % 2 == 0 and c % 2 == 0:  # R site
                out[r, c] = (v, cross, diag / 4)
            elif r % 2 == 1 and c % 2 == 1:  # B site
                out[r, c] = (diag / 4, cross, v)
            elif r % 2 == 0:  # G on an R row
                out[r, c] = (horiz, v, vert)
            else:  # G on a B row
                out[r, c] = (vert, v, horiz)
    return out


def test_numpy_demosaic_matches_the_pixel_loop_inside():
    raw = np.random.default_rng(0).random((9, 12))
    out = load_tool("benchmark_lowlight").bilinear_demosaic_rggb(raw)
    np.testing.assert_allclose(out[1:-1, 1:-1], _loop_demosaic(raw)[1:-1, 1:-1], atol=1e-12)
    # Inside, a flat mosaic stays flat; on the border, "reflect" mirrors a site of another colour
    # into the window, whose zero sample darkens R or B (as in colour-demosaicing).
    flat = load_tool("benchmark_lowlight").bilinear_demosaic_rggb(np.full((6, 8), 0.3))
    np.testing.assert_allclose(flat[1:-1, 1:-1], 0.3, atol=1e-12)


def test_numpy_demosaic_equals_colour_demosaicing():
    colour = pytest.importorskip(
        "colour_demosaicing", reason="colour-demosaicing is optional (pip install it to compare)"
    )
    raw = np.random.default_rng(1).random((10, 14))
    np.testing.assert_allclose(
        load_tool("benchmark_lowlight").bilinear_demosaic_rggb(raw),
        colour.demosaicing_CFA_Bayer_bilinear(raw, "RGGB"),
        atol=1e-12,
    )


def test_reference_synthesis_runs_on_dorf_free_curves():
    from lowlight_nl.synthesis import LowLightSynthesizer, load_camera_responses

    tool = load_tool("benchmark_lowlight")
    synth = LowLightSynthesizer(load_camera_responses(None), seed=0)
    rng = np.random.default_rng(0)
    image = np.full((16, 20, 3), 180, dtype=np.uint8)
    out = tool.reference_synthesis(image, synth.crf, synth.sample_params(rng), rng)
    assert out.shape == image.shape and out.dtype == np.uint8 and out.mean() < 180
