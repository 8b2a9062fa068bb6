"""The LowLightNL trainer: PluginTrainer that registers the COCO folders named by the config and
watches the weighted non-local blocks."""

from detectron2.engine import hooks as d2_hooks

from d2common.engine import PluginTrainer
from d2common.registry import TRAINER_REGISTRY

from .data.datasets import register_cfg_directories
from .liveness import NonLocalLivenessHook


@TRAINER_REGISTRY.register()
class LowLightTrainer(PluginTrainer):
    """Registers ``DATASETS.LOWLIGHT_NL.COCO_DIRS`` before the model and the loaders are built,
    and adds :class:`NonLocalLivenessHook` (``wnl/<stage>/{w,gamma,wz_norm}`` scalars and the
    ``MODEL.LOWLIGHT_NL.LIVENESS_CHECK_ITER`` warning) for models with weighted NL blocks.

    ``build_model`` runs first both in training and in ``--eval-only``, so a folder given on the
    command line can be used in ``DATASETS.TRAIN`` / ``DATASETS.TEST`` right away.
    """

    @classmethod
    def build_model(cls, cfg):
        register_cfg_directories(cfg)
        return super().build_model(cfg)

    def build_hooks(self):
        hooks = super().build_hooks()
        nl = self.cfg.MODEL.LOWLIGHT_NL
        liveness = NonLocalLivenessHook(self.model, nl.LIVENESS_CHECK_ITER, nl.LIVENESS_TOL)
        if not liveness.blocks:
            return hooks
        # Before the writer, so that each step's scalars are written with it.
        writers = [i for i, h in enumerate(hooks) if isinstance(h, d2_hooks.PeriodicWriter)]
        hooks.insert(writers[0] if writers else len(hooks), liveness)
        return hooks
