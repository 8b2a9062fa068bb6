"""Trainer: Adam as in the paper, and evaluation repeated with fresh artifacts (mean and std)."""

import logging
import os
from collections import OrderedDict
from typing import Dict, List

import numpy as np
import torch
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm

from d2common.amp import inference_model
from d2common.engine import PluginTrainer
from d2common.registry import TRAINER_REGISTRY

__all__ = ["OverheadFusionTrainer", "aggregate_repeats"]

logger = logging.getLogger(__name__)


def aggregate_repeats(runs: List[Dict[str, Dict[str, float]]]) -> "OrderedDict":
    """Mean over repeated evaluations, plus ``<metric>_std`` when there are several.

    Args:
        runs: one ``{task: {metric: value}}`` per repeat.
    """
    out = OrderedDict()
    for task in runs[0]:
        out[task] = OrderedDict()
        for metric in runs[0][task]:
            values = np.array([r[task][metric] for r in runs], dtype=np.float64)
            out[task][metric] = float(np.nanmean(values))
            if len(runs) > 1:
                out[task][f"{metric}_std"] = float(np.nanstd(values))
    return out


@TRAINER_REGISTRY.register()
class OverheadFusionTrainer(PluginTrainer):
    """``PluginTrainer`` with Adam (SOLVER.OVERHEAD_FUSION) and TEST.OVERHEAD_FUSION.REPEATS."""

    @classmethod
    def build_optimizer(cls, cfg, model):
        s = cfg.SOLVER.OVERHEAD_FUSION
        if s.OPTIMIZER.upper() == "SGD":
            return super().build_optimizer(cfg, model)
        if s.OPTIMIZER.upper() != "ADAM":
            raise ValueError(f"SOLVER.OVERHEAD_FUSION.OPTIMIZER must be ADAM or SGD: {s.OPTIMIZER}")
        params = [p for p in model.parameters() if p.requires_grad]
        adam = maybe_add_gradient_clipping(cfg, torch.optim.Adam)
        return adam(
            params,
            lr=cfg.SOLVER.BASE_LR,
            betas=tuple(s.BETAS),
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        )

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Evaluates every test set TEST.OVERHEAD_FUSION.REPEATS times with fresh artifacts
        (under autocast, with float32 outputs, when SOLVER.AMP.ENABLED)."""
        repeats = max(1, int(cfg.TEST.OVERHEAD_FUSION.REPEATS))
        model = inference_model(cfg, model)
        results = OrderedDict()
        for idx, dataset_name in enumerate(cfg.DATASETS.TEST):
            runs = []
            for repeat in range(repeats):
                mapper = cls.build_dataset_mapper(cfg, False)
                mapper.repeat = repeat
                loader = cls._test_loader(cfg, dataset_name, mapper)
                if evaluators is not None:
                    evaluator = evaluators[idx]
                else:
                    folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
                    evaluator = cls.build_evaluator(cfg, dataset_name, folder)
                res = inference_on_dataset(model, loader, evaluator)
                if comm.is_main_process():
                    logger.info("%s, repeat %d/%d", dataset_name, repeat + 1, repeats)
                    runs.append(res)
            if comm.is_main_process() and runs and runs[0]:
                results[dataset_name] = aggregate_repeats(runs)
                logger.info("Evaluation results for %s (%d repeats):", dataset_name, repeats)
                print_csv_format(results[dataset_name])
        if len(results) == 1:
            results = list(results.values())[0]
        return results

    @staticmethod
    def _test_loader(cfg, dataset_name, mapper):
        from detectron2.data import build_detection_test_loader

        return build_detection_test_loader(cfg, dataset_name, mapper=mapper)
