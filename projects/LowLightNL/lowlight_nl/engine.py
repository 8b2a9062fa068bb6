"""The LowLightNL trainer: PluginTrainer that registers the COCO folders named by the config."""

from d2common.engine import PluginTrainer
from d2common.registry import TRAINER_REGISTRY

from .data.datasets import register_cfg_directories


@TRAINER_REGISTRY.register()
class LowLightTrainer(PluginTrainer):
    """Registers ``DATASETS.LOWLIGHT_NL.COCO_DIRS`` before the model and the loaders are built.

    ``build_model`` runs first both in training and in ``--eval-only``, so a folder given on the
    command line can be used in ``DATASETS.TRAIN`` / ``DATASETS.TEST`` right away.
    """

    @classmethod
    def build_model(cls, cfg):
        register_cfg_directories(cfg)
        return super().build_model(cfg)
