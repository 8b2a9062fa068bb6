"""The LowLightNL trainer: PluginTrainer that registers the COCO folders named by the config and
watches the weighted non-local blocks."""

from detectron2.data import transforms as T
from detectron2.engine import hooks as d2_hooks
from PIL import Image

from d2common.engine import PluginTrainer
from d2common.registry import TRAINER_REGISTRY

from .data.datasets import register_cfg_directories, register_lis_root
from .evaluation import ClassMappedCOCOEvaluator
from .liveness import NonLocalLivenessHook

_INTERPOLATIONS = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST}


@TRAINER_REGISTRY.register()
class LowLightTrainer(PluginTrainer):
    """Registers ``DATASETS.LOWLIGHT_NL.COCO_DIRS`` (and the LIS splits of
    ``DATASETS.LOWLIGHT_NL.LIS_ROOT``) before the model and the loaders are built, applies
    ``TEST.LOWLIGHT_NL`` (class mapping, test resize interpolation), and adds
    :class:`NonLocalLivenessHook` (``wnl/<stage>/{w,gamma,wz_norm}`` scalars and the
    ``MODEL.LOWLIGHT_NL.LIVENESS_CHECK_ITER`` warning) for models with weighted NL blocks.

    ``build_model`` runs first both in training and in ``--eval-only``, so a folder given on the
    command line can be used in ``DATASETS.TRAIN`` / ``DATASETS.TEST`` right away.
    """

    @classmethod
    def build_model(cls, cfg):
        register_cfg_directories(cfg)
        if cfg.DATASETS.LOWLIGHT_NL.LIS_ROOT:
            register_lis_root(cfg.DATASETS.LOWLIGHT_NL.LIS_ROOT)
        return super().build_model(cfg)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        evaluator = super().build_evaluator(cfg, dataset_name, output_folder)
        if cfg.TEST.LOWLIGHT_NL.CLASS_MAPPING and not isinstance(
            evaluator, ClassMappedCOCOEvaluator
        ):
            raise ValueError(
                f"TEST.LOWLIGHT_NL.CLASS_MAPPING is {cfg.TEST.LOWLIGHT_NL.CLASS_MAPPING!r} but "
                f"TEST.EVALUATOR {cfg.TEST.EVALUATOR} does not apply it: set TEST.EVALUATOR "
                "LowLightNLCOCOEvaluator"
            )
        return evaluator

    @classmethod
    def build_dataset_mapper(cls, cfg, is_train):
        """The config's mapper; at test time its resize interpolates as
        ``TEST.LOWLIGHT_NL.RESIZE_INTERP`` says."""
        mapper = super().build_dataset_mapper(cfg, is_train)
        interp = cfg.TEST.LOWLIGHT_NL.RESIZE_INTERP
        if interp not in _INTERPOLATIONS:
            raise ValueError(
                f"TEST.LOWLIGHT_NL.RESIZE_INTERP {interp!r} is not one of {list(_INTERPOLATIONS)}"
            )
        if not is_train and interp != "bilinear":
            resizes = [a for a in mapper.augmentations.augs if isinstance(a, T.ResizeShortestEdge)]
            if not resizes:
                raise ValueError(
                    f"TEST.LOWLIGHT_NL.RESIZE_INTERP {interp!r}: the test mapper of "
                    f"{cfg.INPUT.DATASET_MAPPER} has no ResizeShortestEdge to apply it to"
                )
            for aug in resizes:
                aug.interp = _INTERPOLATIONS[interp]
        return mapper

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
