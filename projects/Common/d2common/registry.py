"""Registries that let a config name its trainer, evaluator and dataset mapper.

Every name registered here is global across all projects: projects prefix their names
(``FlashAmbient...``, ``GRM...``) so that two can never collide.
"""

from fvcore.common.registry import Registry

TRAINER_REGISTRY = Registry("PLUGIN_TRAINER")
TRAINER_REGISTRY.__doc__ = """
Trainer classes (subclasses of ``DefaultTrainer``), selected by ``cfg.TRAINER.NAME``.
A registered class is constructed as ``cls(cfg)``.
"""

EVALUATOR_REGISTRY = Registry("PLUGIN_EVALUATOR")
EVALUATOR_REGISTRY.__doc__ = """
Evaluator factories selected by ``cfg.TEST.EVALUATOR``. A registered callable is called as
``fn(cfg, dataset_name, output_folder)`` and returns a ``DatasetEvaluator``.
"""

DATASET_MAPPER_REGISTRY = Registry("PLUGIN_DATASET_MAPPER")
DATASET_MAPPER_REGISTRY.__doc__ = """
Dataset mappers selected by ``cfg.INPUT.DATASET_MAPPER``. A registered class is constructed as
``cls(cfg, is_train)`` (detectron2's ``@configurable`` mappers work as they are).
"""
