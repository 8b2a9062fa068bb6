"""Registries of the project's generators and discriminators (names prefixed ``FlashAmbient``)."""

from fvcore.common.registry import Registry

FLASH_AMBIENT_GENERATOR_REGISTRY = Registry("FLASH_AMBIENT_GENERATOR")
FLASH_AMBIENT_GENERATOR_REGISTRY.__doc__ = """
Image-to-image generators G, selected by ``MODEL.FLASH_AMBIENT.GENERATOR.NAME`` and constructed
as ``cls(cfg)``. They map (N, 3, H, W) images in [0, 1] to (N, 3, H, W) for any H, W.
"""

FLASH_AMBIENT_DISCRIMINATOR_REGISTRY = Registry("FLASH_AMBIENT_DISCRIMINATOR")
FLASH_AMBIENT_DISCRIMINATOR_REGISTRY.__doc__ = """
Discriminators D, selected by ``MODEL.FLASH_AMBIENT.DISCRIMINATOR.NAME`` and constructed as
``cls(cfg)``. They map (N, C, H, W) images to (N, 1, h, w) logits (a patch of scores).
"""


def build_flash_ambient_generator(cfg):
    """The generator named by the config, on ``cfg.MODEL.DEVICE``."""
    import torch

    name = cfg.MODEL.FLASH_AMBIENT.GENERATOR.NAME
    return FLASH_AMBIENT_GENERATOR_REGISTRY.get(name)(cfg).to(torch.device(cfg.MODEL.DEVICE))


def build_flash_ambient_discriminator(cfg):
    """The discriminator named by the config on ``cfg.MODEL.DEVICE``, or None when NAME is empty."""
    import torch

    name = cfg.MODEL.FLASH_AMBIENT.DISCRIMINATOR.NAME
    if name in ("", "none", "None"):
        return None
    return FLASH_AMBIENT_DISCRIMINATOR_REGISTRY.get(name)(cfg).to(torch.device(cfg.MODEL.DEVICE))
