"""Trainer: Adam as in the paper, and evaluation repeated with fresh artifacts (mean and std)."""

import json
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

__all__ = [
    "OverheadFusionTrainer",
    "aggregate_repeats",
    "per_repeat_values",
    "resolve_dataset",
    "train_once",
]

logger = logging.getLogger(__name__)


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def aggregate_repeats(runs: List[Dict[str, Dict[str, float]]]) -> "OrderedDict":
    """Mean over repeated evaluations, plus ``<metric>_std`` when there are several: the sample
    standard deviation (ddof = 1) of the repeats. Non-numeric entries (the evaluated records)
    are taken from the first repeat.

    Args:
        runs: one ``{task: {metric: value}}`` per repeat.
    """
    out = OrderedDict()
    for task in runs[0]:
        out[task] = OrderedDict()
        for metric, first in runs[0][task].items():
            if not _numeric(first):
                out[task][metric] = first
                continue
            values = np.array([r[task][metric] for r in runs], dtype=np.float64)
            out[task][metric] = float(np.nanmean(values))
            if len(runs) > 1:
                out[task][f"{metric}_std"] = float(np.nanstd(values, ddof=1))
    return out


def per_repeat_values(runs: List[Dict[str, Dict[str, float]]]) -> Dict[str, Dict[str, list]]:
    """``{task: {metric: [value of repeat 0, 1, ...]}}`` of the numeric metrics."""
    return {
        task: {m: [r[task][m] for r in runs] for m, v in runs[0][task].items() if _numeric(v)}
        for task in runs[0]
    }


def resolve_dataset(cfg, dataset_name: str) -> str:
    """The dataset a config trains or evaluates on: ``dataset_name`` itself, or with
    INPUT.OVERHEAD_FUSION.NODATA "drop" its variant without the no-data tiles. Registers the
    config's INPUT.OVERHEAD_FUSION.FOLDER_DATASETS and STACK_DATASETS first."""
    from .data import nodata_color, nodata_dropped_dataset
    from .data.builtin import register_folder_datasets
    from .data.stacks import register_stack_entries

    c = cfg.INPUT.OVERHEAD_FUSION
    register_folder_datasets(c.FOLDER_DATASETS)
    register_stack_entries(c.STACK_DATASETS)
    color = nodata_color(cfg)
    if c.NODATA != "drop" or color is None:
        return dataset_name
    return nodata_dropped_dataset(dataset_name, color, float(c.NODATA_MAX_FRACTION))


@TRAINER_REGISTRY.register()
class OverheadFusionTrainer(PluginTrainer):
    """``PluginTrainer`` with Adam (SOLVER.OVERHEAD_FUSION), TEST.OVERHEAD_FUSION.REPEATS and
    the no-data tiles left out of every dataset with INPUT.OVERHEAD_FUSION.NODATA "drop"."""

    @classmethod
    def build_train_loader(cls, cfg):
        names = tuple(resolve_dataset(cfg, n) for n in cfg.DATASETS.TRAIN)
        if names != tuple(cfg.DATASETS.TRAIN):
            cfg = cfg.clone()
            cfg.defrost()
            cfg.DATASETS.TRAIN = names
        return super().build_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return super().build_test_loader(cfg, resolve_dataset(cfg, dataset_name))

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
            dataset_name = resolve_dataset(cfg, dataset_name)
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
                folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, "repeats.json"), "w") as f:
                    json.dump({"repeats": repeats, "values": per_repeat_values(runs)}, f, indent=1)
                logger.info("Evaluation results for %s (%d repeats):", dataset_name, repeats)
                print_csv_format(results[dataset_name])
        if len(results) == 1:
            results = list(results.values())[0]
        return results

    @staticmethod
    def _test_loader(cfg, dataset_name, mapper):
        from detectron2.data import build_detection_test_loader

        return build_detection_test_loader(cfg, dataset_name, mapper=mapper)


def train_once(cfg, resume: bool = True) -> Dict[str, Dict[str, float]]:
    """Trains and evaluates one config in ``cfg.OUTPUT_DIR``, seeded by ``cfg.SEED``.

    Writes ``config.yaml`` (which the evaluation and visualisation tools open), the checkpoints
    and, once finished, ``results.json``. With ``resume`` a finished run is read back instead of
    trained again and an interrupted one continues from its last checkpoint.

    Returns:
        {test dataset: {metric: value}} of the final evaluation.
    """
    from detectron2.utils.env import seed_all_rng

    out = cfg.OUTPUT_DIR
    done = os.path.join(out, "results.json")
    if resume and os.path.exists(done):
        with open(done) as f:
            return json.load(f)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.yaml"), "w") as f:
        f.write(cfg.dump())
    seed_all_rng(None if cfg.SEED < 0 else cfg.SEED)
    trainer = OverheadFusionTrainer(cfg)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    # The evaluation hook has tested the final model (TEST.OVERHEAD_FUSION.REPEATS times).
    results = trainer._last_eval_results
    if "fusion" in results:
        results = {cfg.DATASETS.TEST[0]: results}
    results = {name: dict(r["fusion"]) for name, r in results.items()}
    with open(done, "w") as f:
        json.dump(results, f, indent=2)
    return results
