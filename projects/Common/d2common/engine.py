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

from .amp import inference_model, mixed_precision_trainer
from .checks import run_dataset_checks
from .data.registration import get_load_report
from .evaluation_coverage import check_coverage
from .registry import DATASET_MAPPER_REGISTRY, EVALUATOR_REGISTRY, TRAINER_REGISTRY

logger = logging.getLogger(__name__)

DATASET_MAPPER_REGISTRY.register(DatasetMapper)


class CoveredCOCOEvaluator(_D2COCOEvaluator):
    """detectron2's COCO evaluator that scores exactly the loaded records, once each.

    - Only the image ids of the records the dataset loaded are scored (a COCO JSON may list
      images whose files are missing: they are excluded at load time, not counted as misses).
    - Every loaded record must have been predicted exactly once; the results gain a ``records``
      task (evaluated / candidates / excluded).
    - With no prediction at all, AP is 0 (every ground-truth instance is missed) instead of NaN.
      With no ground-truth instance, AP stays NaN: it is undefined.
    """

    def _eval_predictions(self, predictions, img_ids=None):
        counts, _ = check_coverage(
            self._metadata.name, [p["image_id"] for p in predictions], self._output_dir
        )
        report = get_load_report(self._metadata.name)
        if img_ids is None:
            img_ids = [_coco_id(i) for i in report.record_ids]
        super()._eval_predictions(predictions, img_ids=img_ids)
        self._results["records"] = counts

    def _derive_coco_results(self, coco_eval, iou_type, class_names=None):
        if coco_eval is None:
            metrics = {
                "bbox": ["AP", "AP50", "AP75", "APs", "APm", "APl"],
                "segm": ["AP", "AP50", "AP75", "APs", "APm", "APl"],
                "keypoints": ["AP", "AP50", "AP75", "APm", "APl"],
            }[iou_type]
            self._logger.warning("No predictions on %s: %s AP is 0.", self._metadata.name, iou_type)
            return {m: 0.0 for m in metrics}
        return super()._derive_coco_results(coco_eval, iou_type, class_names=class_names)


def _coco_id(key: str):
    return int(key) if key.lstrip("-").isdigit() else key


@EVALUATOR_REGISTRY.register()
class COCOEvaluator(CoveredCOCOEvaluator):
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
    (DATASET_MAPPER_REGISTRY). Models on CPU train under DDP too (GLOO). ``SOLVER.AMP.ENABLED``
    trains and evaluates in mixed precision on CUDA (float16) and on the CPU (bfloat16).
    """

    def __init__(self, cfg):
        with _cpu_safe_ddp(), mixed_precision_trainer(cfg):
            super().__init__(cfg)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """``DefaultTrainer.test``; with ``SOLVER.AMP.ENABLED`` the model runs under autocast and
        the evaluators get float32 outputs."""
        return super().test(cfg, inference_model(cfg, model), evaluators)

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
        loader = build_detection_train_loader(cfg, mapper=cls.build_dataset_mapper(cfg, True))
        run_dataset_checks(cfg, cfg.DATASETS.TRAIN)
        return loader

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        loader = build_detection_test_loader(
            cfg, dataset_name, mapper=cls.build_dataset_mapper(cfg, False)
        )
        run_dataset_checks(cfg, [dataset_name])
        return loader


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
