"""Generators, discriminators, meta-architectures and the GAN objective."""

from .discriminators import FlashAmbientPatchGAN, FlashAmbientStridedDiscriminator
from .generators import FlashAmbientSIDUNet, FlashAmbientVGG16UNet, VGG16Encoder
from .losses import FlashAmbientGANLoss
from .meta_arch import (
    FlashAmbientDeepFlash,
    FlashAmbientEnhancer,
    FlashAmbientIdentity,
    FlashAmbientTranslator,
)
from .registry import (
    FLASH_AMBIENT_DISCRIMINATOR_REGISTRY,
    FLASH_AMBIENT_GENERATOR_REGISTRY,
    build_flash_ambient_discriminator,
    build_flash_ambient_generator,
)

__all__ = [
    "FlashAmbientPatchGAN",
    "FlashAmbientStridedDiscriminator",
    "FlashAmbientSIDUNet",
    "FlashAmbientVGG16UNet",
    "VGG16Encoder",
    "FlashAmbientGANLoss",
    "FlashAmbientDeepFlash",
    "FlashAmbientEnhancer",
    "FlashAmbientIdentity",
    "FlashAmbientTranslator",
    "FLASH_AMBIENT_DISCRIMINATOR_REGISTRY",
    "FLASH_AMBIENT_GENERATOR_REGISTRY",
    "build_flash_ambient_discriminator",
    "build_flash_ambient_generator",
]
