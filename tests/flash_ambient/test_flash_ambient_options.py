"""Options where the paper and the authors' code differ: decoder depth, upsampling, the two
attention switches and the authors' bilateral filter (against a naive per-pixel loop)."""

import math

import cv2
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from torch import nn

from d2common.testing import plugin_cfg
from flash_ambient.data import FlashAmbientDatasetMapper
from flash_ambient.modeling import FlashAmbientGANLoss, FlashAmbientSIDUNet, FlashAmbientVGG16UNet
from flash_ambient.modeling.generators import _UpBlock
from flash_ambient.ops import bilateral_filter, bilateral_filter_authors


def _naive_authors_bilateral(image, diameter, sigma_space, sigma_range):
    """(H, W, C) float64 on 0-255 -> the authors' filter, one pixel and channel at a time
    (floor with the documented 1e-6 tolerance for exact integer means)."""
    h, w, c = image.shape
    r = diameter // 2
    padded = np.zeros((h + 2 * r, w + 2 * r, c))
    padded[r : r + h, r : r + w] = image
    out = np.zeros_like(image)
    for y in range(h):
        for x in range(w):
            for k in range(c):
                num = den = 0.0
                for dy in range(-r, r + 1):
                    for dx in range(-r, r + 1):
                        q = padded[y + r + dy, x + r + dx, k]
                        wgt = math.exp(-(dy * dy + dx * dx) / (2 * sigma_space**2))
                        wgt *= math.exp(-((q - image[y, x, k]) ** 2) / (2 * sigma_range**2))
                        num += wgt * q
                        den += wgt
                out[y, x, k] = math.floor(num / den + 1e-6)
    return out


@pytest.mark.parametrize("diameter,sigma_space,sigma_range", [(7, 7.0, 102.0), (5, 1.5, 20.0)])
def test_authors_bilateral_matches_a_naive_loop(diameter, sigma_space, sigma_range):
    rng = np.random.default_rng(diameter)
    image = rng.integers(0, 256, (9, 11, 3)).astype(np.float64)
    image[3:6, 4:8] = 250.0  # a bright block: edges the range weight must keep
    expected = _naive_authors_bilateral(image, diameter, sigma_space, sigma_range)
    got = bilateral_filter_authors(
        torch.from_numpy(image).permute(2, 0, 1)[None].float(), diameter, sigma_space, sigma_range
    )[0].permute(1, 2, 0)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_authors_bilateral_differs_from_opencv_where_documented():
    """Zero padding darkens a flat bright image at its border only; OpenCV keeps it flat."""
    flat = torch.full((1, 3, 12, 12), 200.0)
    authors = bilateral_filter_authors(flat)
    assert torch.equal(authors[..., 3:-3, 3:-3], flat[..., 3:-3, 3:-3])
    assert authors[0, 0, 0, 0] < 190.0
    torch.testing.assert_close(bilateral_filter(flat), flat)
    x = torch.rand(1, 3, 10, 10) * 255
    assert torch.equal(bilateral_filter_authors(x), bilateral_filter_authors(x).floor())


def _decoder_convs(generator):
    return [sum(isinstance(m, nn.Conv2d) for m in b.convs) for b in generator.decoder]


def test_decoder_depth_options():
    mirror = FlashAmbientVGG16UNet(base_channels=4, decoder_convs=(3, 3, 2, 2))
    authors = FlashAmbientVGG16UNet(base_channels=4, decoder_convs=(3, 2, 2, 2))
    assert _decoder_convs(mirror) == [3, 3, 2, 2] and _decoder_convs(authors) == [3, 2, 2, 2]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # One extra conv at the relu3_3 level (4 * base channels): 16 -> 16, 3x3, with bias.
    assert count(mirror) - count(authors) == 16 * 16 * 9 + 16
    x = torch.rand(1, 3, 37, 50)
    assert authors(x).shape == x.shape
    with pytest.raises(ValueError, match="DECODER_CONVS must list 4 positive"):
        FlashAmbientVGG16UNet(base_channels=4, decoder_convs=(3, 2, 2))
    cfg = plugin_cfg(
        "configs/FlashAmbient/flash_ambient_vgg16_authors_1000ep_faid.yaml",
        [
            "MODEL.DEVICE",
            "cpu",
            "MODEL.WEIGHTS",
            "",
            "MODEL.FLASH_AMBIENT.GENERATOR.BASE_CHANNELS",
            4,
        ],
    )
    generator = build_model(cfg).generator
    assert _decoder_convs(generator) == [3, 2, 2, 2]
    assert all(p.requires_grad for p in generator.encoder.parameters())


@pytest.mark.parametrize("size", [(32, 48), (37, 50), (17, 23)])
@pytest.mark.parametrize("upsample", ["transposed", "resize_conv"])
def test_upsampling_options_keep_any_input_size(upsample, size):
    x = torch.rand(2, 3, *size)
    for net in (
        FlashAmbientVGG16UNet(base_channels=4, upsample=upsample),
        FlashAmbientSIDUNet(base_channels=4, upsample=upsample),
    ):
        assert net(x).shape == x.shape
    with pytest.raises(ValueError, match="UPSAMPLE must be one of"):
        FlashAmbientVGG16UNet(base_channels=4, upsample="bilinear")


def test_resize_conv_has_no_checkerboard_and_transposed_conv_has_one():
    """A constant feature map: resize + conv gives a constant interior, the stride-2 transposed
    conv a period-2 pattern (its output pixels get 1, 2 or 4 kernel taps)."""
    torch.manual_seed(0)
    x = torch.ones(1, 8, 8, 8)
    for mode, flat in (("resize_conv", True), ("transposed", False)):
        block = _UpBlock(8, 4, 1, 3, nn.ReLU, mode)
        if mode == "resize_conv":
            up = block.up(torch.nn.functional.interpolate(x, size=(16, 16)))
        else:
            up = block.up(x, output_size=(16, 16))
        interior = up[..., 2:-2, 2:-2]
        spread = (interior - interior[..., :1, :1]).abs().max().item()
        assert (spread < 1e-6) == flat, (mode, spread)


def _outputs():
    torch.manual_seed(1)
    flash, ambient, fake = torch.rand(3, 2, 3, 8, 8).unbind(0)
    attention = 1 - (ambient - flash).abs().mean(dim=1, keepdim=True)
    return {"flash": flash, "target": ambient, "fake": fake, "attention": attention}


@pytest.mark.parametrize("attention_g,attention_d", [(True, False), (False, True), (True, True)])
def test_attention_switches_guide_their_own_term(attention_g, attention_d):
    outputs = _outputs()
    m = outputs["attention"] if attention_g else 1.0
    seen = []

    def disc(x):
        seen.append(x)
        return x.mean(dim=1, keepdim=True)

    loss = FlashAmbientGANLoss(attention_g=attention_g, attention_d=attention_d)
    g = loss.generator_losses(outputs, disc)
    l1 = (outputs["target"] * m - outputs["fake"] * m).abs().mean()
    assert g["loss_l1"].item() == pytest.approx(l1.item())
    loss.discriminator_losses(outputs, disc)
    d_mask = outputs["attention"] if attention_d else 1.0
    for got, image in zip(seen, ("fake", "target", "fake")):
        torch.testing.assert_close(got, outputs[image] * d_mask)


def test_attention_switch_configs():
    cfg = plugin_cfg("configs/FlashAmbient/rm_a_vgg16_1000ep_faid.yaml", ["MODEL.DEVICE", "cpu"])
    loss = FlashAmbientGANLoss(cfg)
    assert loss.attention_g and not loss.attention_d


def test_authors_filter_is_applied_before_the_crop(tmp_path):
    rng = np.random.default_rng(0)
    paths = {}
    for kind in ("flash", "ambient"):
        image = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        paths[kind] = str(tmp_path / f"Toys_001_{kind}.png")
        cv2.imwrite(paths[kind], image[:, :, ::-1])
    opts = ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "INPUT.FLASH_AMBIENT.RESIZE", (24, 24)]
    opts += ["INPUT.FLASH_AMBIENT.CROP_BASE", 24, "INPUT.FLASH_AMBIENT.CROP_SCALE", (1.0, 1.0)]
    opts += ["INPUT.FLASH_AMBIENT.CROP_SIZE", 24, "INPUT.FLASH_AMBIENT.RANDOM_FLIP", False]
    opts += ["MODEL.FLASH_AMBIENT.GENERATOR.BASE_CHANNELS", 4]
    cfg = plugin_cfg("configs/FlashAmbient/deepflash_authors_vgg16_1000ep_faid.yaml", opts)
    record = {"file_name": paths["flash"], "ambient_file_name": paths["ambient"]}
    d = FlashAmbientDatasetMapper(cfg, is_train=True)(record)
    for image_key, bf_key in (("image", "image_bf"), ("ambient", "ambient_bf")):
        expected = bilateral_filter_authors(d[image_key][None].float(), 7, 7.0, 102.0)[0]
        assert d[bf_key].dtype == torch.uint8
        torch.testing.assert_close(d[bf_key].float(), expected, rtol=0, atol=0)

    model = build_model(cfg).train()
    net_input, target = model.prepare_training(
        d["image"][None].float() / 255, d["ambient"][None].float() / 255, [d]
    )
    torch.testing.assert_close(net_input, d["image_bf"][None].float() / 255)
    plain = FlashAmbientDatasetMapper(
        plugin_cfg("configs/FlashAmbient/deepflash_vgg16_1000ep_faid.yaml", opts), is_train=True
    )(record)
    assert "image_bf" not in plain
