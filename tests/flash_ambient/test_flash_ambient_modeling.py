"""Generators, discriminators, the GAN objective and the meta-architectures (CPU, tiny widths)."""

import pytest
import torch
import torchvision

from d2common.testing import plugin_cfg
from flash_ambient.modeling import (
    FlashAmbientGANLoss,
    FlashAmbientPatchGAN,
    FlashAmbientSIDUNet,
    FlashAmbientStridedDiscriminator,
    FlashAmbientVGG16UNet,
    VGG16Encoder,
)
from flash_ambient.ops import attention_map


def test_vgg16_encoder_has_torchvision_layout():
    # torchvision's own builder of vgg16().features (configuration "D"), without the classifier.
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    encoder = VGG16Encoder(64)
    ours = encoder.state_dict()
    theirs = {k: v for k, v in features.state_dict().items() if int(k.split(".")[0]) < 30}
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    encoder.load_state_dict(theirs, strict=True)
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        skips = encoder(x)
        reference = features[:30](x)
    torch.testing.assert_close(skips[-1], reference)
    assert [s.shape[1] for s in skips] == [64, 128, 256, 512, 512]
    assert [s.shape[-1] for s in skips] == [48, 24, 12, 6, 3]


@pytest.mark.parametrize("size", [(37, 53), (30, 41)])
@pytest.mark.parametrize("cls", [FlashAmbientVGG16UNet, FlashAmbientSIDUNet])
def test_generators_keep_odd_sizes_and_range(cls, size):
    net = cls(base_channels=4)
    out = net(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size)
    assert out.min() >= 0 and out.max() <= 1


def test_frozen_encoder_has_no_gradients():
    net = FlashAmbientVGG16UNet(base_channels=4, freeze_encoder=True)
    net(torch.rand(1, 3, 16, 16)).mean().backward()
    assert all(p.grad is None and not p.requires_grad for p in net.encoder.parameters())
    assert all(p.grad is not None for p in net.decoder.parameters())
    trainable = FlashAmbientVGG16UNet(base_channels=4, freeze_encoder=False)
    assert all(p.requires_grad for p in trainable.encoder.parameters())


def test_discriminator_output_sizes():
    strided = FlashAmbientStridedDiscriminator(in_channels=3, base_channels=4)
    assert strided(torch.rand(2, 3, 224, 224)).shape == (2, 1, 7, 7)
    patch = FlashAmbientPatchGAN(in_channels=6, base_channels=4)
    assert patch(torch.rand(1, 6, 256, 256)).shape == (1, 1, 30, 30)


def test_patchgan_receptive_field_is_70():
    patch = FlashAmbientPatchGAN(in_channels=3, base_channels=4).eval()
    x = torch.zeros(1, 3, 128, 128, requires_grad=True)
    patch(x)[0, 0, 6, 6].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)))
    assert rows.max() - rows.min() + 1 == 70


def test_gan_loss_uses_attention_and_condition():
    torch.manual_seed(0)
    flash, ambient = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    m = attention_map(ambient, flash)
    outputs = {"flash": flash, "target": ambient, "fake": fake, "attention": m}
    seen = []

    def disc(x):
        seen.append(x.detach())
        return x.mean(dim=(1, 2, 3), keepdim=True)

    loss = FlashAmbientGANLoss(l1_weight=2.0, adv_weight=0.5, d_loss_weight=0.5, conditional=True)
    g = loss.generator_losses(outputs, disc)
    assert g["loss_l1"].item() == pytest.approx(2.0 * (ambient * m - fake * m).abs().mean().item())
    torch.testing.assert_close(seen[-1], torch.cat([flash, fake.detach() * m], dim=1))
    logits = (fake * m).mean() * 0.5 + flash.mean() * 0.5
    expected_adv = 0.5 * torch.nn.functional.softplus(-logits)
    assert g["loss_g_adv"].item() == pytest.approx(expected_adv.item(), rel=1e-5)
    d = loss.discriminator_losses(outputs, disc)
    torch.testing.assert_close(seen[-2], torch.cat([flash, ambient * m], dim=1))
    assert set(d) == {"loss_d_real", "loss_d_fake"}
    assert d["loss_d_fake"].requires_grad is False  # fake is detached, disc has no parameters

    plain = FlashAmbientGANLoss()
    outputs["attention"] = None
    assert set(plain.generator_losses(outputs)) == {"loss_l1"}
    assert plain.generator_losses(outputs)["loss_l1"].item() == pytest.approx(
        (ambient - fake).abs().mean().item()
    )


def _inputs(n, h, w, ambient=True):
    batch = []
    for _ in range(n):
        d = {"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8)}
        if ambient:
            d["ambient"] = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
        batch.append(d)
    return batch


TINY = ["MODEL.FLASH_AMBIENT.GENERATOR.BASE_CHANNELS", 4, "MODEL.WEIGHTS", ""]


@pytest.mark.parametrize(
    "config",
    [
        "flash_ambient_vgg16_1000ep_faid",
        "deepflash_vgg16_1000ep_faid",
        "flash_ambient_sidunet_1000ep_faid",
    ],
)
def test_meta_arch_train_and_inference_outputs(config):
    from detectron2.modeling import build_model

    cfg = plugin_cfg(f"configs/FlashAmbient/{config}.yaml", TINY + ["MODEL.DEVICE", "cpu"])
    model = build_model(cfg)
    model.train()
    out = model(_inputs(2, 32, 32))
    assert out["fake"].shape == out["target"].shape == (2, 3, 32, 32)
    m = cfg.MODEL.FLASH_AMBIENT
    assert (out["attention"] is None) == (not (m.ATTENTION_G or m.ATTENTION_D))
    model.eval()
    with torch.no_grad():
        results = model(_inputs(1, 24, 40, ambient=False) + _inputs(1, 40, 24, ambient=False))
    assert [r["ambient"].shape for r in results] == [(3, 24, 40), (3, 40, 24)]
    assert all(0 <= r["ambient"].min() and r["ambient"].max() <= 1 for r in results)


def test_deepflash_target_and_reconstruction():
    from detectron2.modeling import build_model

    cfg = plugin_cfg(
        "configs/FlashAmbient/deepflash_vgg16_1000ep_faid.yaml", TINY + ["MODEL.DEVICE", "cpu"]
    )
    model = build_model(cfg)
    flash, ambient = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    net_in, target = model.prepare_training(flash, ambient)
    torch.testing.assert_close(target, (model._filter(flash) - model._filter(ambient)) / 2)

    class PerfectRatio(torch.nn.Module):
        def forward(self, x):
            return target

    model.generator = PerfectRatio()
    expected = (flash - (model._filter(flash) - model._filter(ambient))).clamp(0, 1)
    torch.testing.assert_close(model.predict(flash), expected)


def test_identity_returns_flash_and_refuses_training():
    from detectron2.modeling import build_model

    cfg = plugin_cfg("configs/FlashAmbient/identity_faid.yaml", ["MODEL.DEVICE", "cpu"])
    model = build_model(cfg).eval()
    batch = _inputs(1, 12, 20)
    torch.testing.assert_close(model(batch)[0]["ambient"], batch[0]["image"].float() / 255)
    with pytest.raises(RuntimeError, match="--eval-only"):
        model.train()(batch)
