"""The GAN trainer plugged into ``tools/train_net.py`` by ``TRAINER.NAME``."""

from .trainer import FlashAmbientGANStep, FlashAmbientGANTrainer

__all__ = ["FlashAmbientGANStep", "FlashAmbientGANTrainer"]
