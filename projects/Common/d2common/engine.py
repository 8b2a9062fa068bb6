"""The trainer behind ``tools/train_net.py``: ``DefaultTrainer`` with registry-driven hooks."""

import contextlib
import json
import logging
import os
from collections import OrderedDict

import torch
from detectron2.data import DatasetMapper, build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer
from detectron2.engine import defaults as d2_defaults
from detectron2.evaluation import COCOEvaluator as _D2COCOEvaluator
from detectron2.utils import comm

from .registry import DATASET_MAPPER_REGISTRY, EVALUATOR_REGISTRY, TRAINER_REGISTRY

logger = logging.getLogger(__name__)

DATASET_MAPPER_REGISTRY.register(DatasetMapper)


@EVALUATOR_REGISTRY.register()
class COCOEvaluator(_D2COCOEvaluator):
    """detectron2's COCO evaluator (box / mask AP), constructed the registry's way."""

    def __init__(self, cfg, dataset_name, output_folder):
        super().__init__(dataset_name, output_dir=output_folder)


def create_ddp_model_any_device(model, **kwargs):
    """Like detectron2's ``create_ddp_model``, but also works for CPU models.

    ``DistributedDataParallel(device_ids=[rank])`` raises for CPU modules, so CPU models (GLOO
    backend, e.g. ``--num-gpus 2`` on a machine without CUDA) are wrapped without device ids.
    """
    if comm.get_world_size() > 1 and next(model.parameters()).device.type == "cpu":
        kwargs.setdefault("device_ids", None)
    return _d2_create_ddp_model(model, **kwargs)


_d2_create_ddp_model = d2_defaults.create_ddp_model


@contextlib.contextmanager
def _cpu_safe_ddp():
    # DefaultTrainer.__init__ calls the module-level create_ddp_model; swap it only while
    # the base constructor runs so that the training loop itself stays detectron2's own.
    d2_defaults.create_ddp_model = create_ddp_model_any_device
    try:
        yield
    finally:
        d2_defaults.create_ddp_model = _d2_create_ddp_model


@TRAINER_REGISTRY.register()
class PluginTrainer(DefaultTrainer):
    """``DefaultTrainer`` whose evaluator and dataset mapper are named by the config.

    Config keys: ``TEST.EVALUATOR`` (EVALUATOR_REGISTRY), ``INPUT.DATASET_MAPPER``
    (DATASET_MAPPER_REGISTRY). Models on CPU train under DDP too (GLOO).
    """

    def __init__(self, cfg):
        with _cpu_safe_ddp():
            super().__init__(cfg)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, dataset_name, output_folder)

    @classmethod
    def build_dataset_mapper(cls, cfg, is_train):
        return DATASET_MAPPER_REGISTRY.get(cfg.INPUT.DATASET_MAPPER)(cfg, is_train)

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(cfg, mapper=cls.build_dataset_mapper(cfg, True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(
            cfg, dataset_name, mapper=cls.build_dataset_mapper(cfg, False)
        )


def build_trainer(cfg):
    """Constructs the trainer class named by ``cfg.TRAINER.NAME``."""
    return TRAINER_REGISTRY.get(cfg.TRAINER.NAME)(cfg)


def trainer_class(cfg):
    """Returns the trainer class named by ``cfg.TRAINER.NAME`` (for its ``test`` classmethod)."""
    return TRAINER_REGISTRY.get(cfg.TRAINER.NAME)


def resolve_device(cfg):
    """Falls back to CPU when the config asks for CUDA on a machine without it (in place)."""
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("MODEL.DEVICE=%s but CUDA is not available: using cpu.", cfg.MODEL.DEVICE)
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def write_results(results, output_dir, filename="eval_results.json"):
    """Writes flattened evaluation results as JSON (main process only). Returns the path."""
    if not comm.is_main_process() or not results:
        return None
    flat = OrderedDict()
    for dataset_name, res in results.items() if _is_nested(results) else [("", results)]:
        for task, metrics in res.items():
            if isinstance(metrics, dict):
                for k, v in metrics.items():
                    flat[_key(dataset_name, task, k)] = float(v)
            else:
                flat[_key(dataset_name, task)] = float(metrics)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, filename)
    with open(path, "w") as f:
        json.dump(flat, f, indent=2)
    return path


def _is_nested(results):
    return all(isinstance(v, dict) for v in results.values()) and any(
        isinstance(vv, dict) for v in results.values() for vv in v.values()
    )


def _key(*parts):
    return "/".join(p for p in parts if p)
