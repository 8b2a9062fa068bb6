"""Config keys shared by all projects (trainer, evaluator and mapper selection)."""

from detectron2.config import CfgNode as CN


def add_common_config(cfg):
    """Adds the plugin-wide keys to ``cfg`` in place. Idempotent."""
    if "TRAINER" not in cfg:
        cfg.TRAINER = CN()
        # Name in TRAINER_REGISTRY of the trainer class tools/train_net.py builds.
        cfg.TRAINER.NAME = "PluginTrainer"
    # Name in EVALUATOR_REGISTRY of the evaluator built for every test dataset.
    cfg.TEST.EVALUATOR = cfg.TEST.get("EVALUATOR", "COCOEvaluator")
    # Name in DATASET_MAPPER_REGISTRY of the mapper used by the train and test loaders.
    cfg.INPUT.DATASET_MAPPER = cfg.INPUT.get("DATASET_MAPPER", "DatasetMapper")
