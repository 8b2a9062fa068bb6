"""Single-image inference and the panels tool apply the config's enhancer before the model."""

import numpy as np
import pytest
import torch

from d2common.testing import load_tool, plugin_cfg, repo_root
from lowlight_nl.enhancement import clahe, gamma_correction
from lowlight_nl.predictor import LowLightPredictor

FAST = ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "INPUT.MIN_SIZE_TEST", "0"]


def _seen_by_model(predictor: LowLightPredictor, image_bgr: np.ndarray) -> np.ndarray:
    """The (H, W, 3) BGR uint8 image the model receives for ``image_bgr``."""
    model = predictor.predictor.model
    seen = []
    original = model.forward

    def spy(batched_inputs):
        seen.append(batched_inputs[0]["image"].permute(1, 2, 0).numpy().astype(np.uint8))
        return original(batched_inputs)

    model.forward = spy
    predictor(image_bgr)
    return seen[0]


@pytest.mark.parametrize(
    "enhancer, reference",
    [
        ("none", lambda rgb: rgb),
        ("gamma", lambda rgb: gamma_correction(rgb, 2.2)),
        ("clahe", clahe),
    ],
)
def test_predictor_feeds_the_enhanced_image(enhancer, reference):
    cfg = plugin_cfg(
        "configs/LowLightNL/demo.yaml", FAST + ["INPUT.LOWLIGHT_NL.ENHANCER", enhancer]
    )
    predictor = LowLightPredictor(cfg)
    rng = np.random.default_rng(0)
    image_bgr = rng.integers(0, 40, (48, 64, 3), dtype=np.uint8)  # dark
    expected_bgr = reference(np.ascontiguousarray(image_bgr[:, :, ::-1]))[:, :, ::-1]
    np.testing.assert_array_equal(_seen_by_model(predictor, image_bgr), expected_bgr)
    if enhancer != "none":
        assert expected_bgr.mean() > image_bgr.mean() + 5  # the enhancer did brighten it


@pytest.mark.parametrize("enhancer", ["gamma", "clahe"])
def test_visualize_tool_uses_the_two_stage_configs_enhancer(enhancer):
    tool = load_tool("visualize_lowlight")
    config = f"configs/LowLightNL/maskrcnn_R50_FPN_pretrained-{enhancer}_coco_lowlight.yaml"
    label, predictor, _, fmt = tool.build_predictor(f"two-stage={repo_root() / config}", FAST)
    assert label == f"two-stage ({enhancer})"
    assert isinstance(predictor, LowLightPredictor) and predictor.method == enhancer
    image = np.full((40, 40, 3), 10, dtype=np.uint8)
    assert predictor.enhance(image).mean() > 20
    assert fmt == "BGR"
    with torch.no_grad():
        assert "instances" in predictor(image)
