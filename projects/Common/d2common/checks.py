"""Config / data consistency checks that run when a trainer builds its data loaders.

A project registers a check with :func:`register_dataset_check`; every check is called as
``check(cfg, dataset_name)`` after the dataset has been loaded (so its metadata is complete) for
each train and test dataset, before the first iteration or the first evaluated batch. A check
returns quietly when the config is not its project's, and raises :class:`ConfigDataMismatch`
with the key to set otherwise.
"""

from typing import Callable, List

from detectron2.data import MetadataCatalog

_DATASET_CHECKS: List[Callable] = []


class ConfigDataMismatch(ValueError):
    """The config does not fit the data (number of classes, vocabulary size, views, ...)."""


def register_dataset_check(check: Callable) -> Callable:
    """Adds ``check(cfg, dataset_name)`` to the checks run at start-up. Usable as a decorator."""
    if check not in _DATASET_CHECKS:
        _DATASET_CHECKS.append(check)
    return check


def run_dataset_checks(cfg, dataset_names) -> None:
    """Runs every registered check on each of ``dataset_names``."""
    for name in dataset_names:
        for check in _DATASET_CHECKS:
            check(cfg, name)


def check_num_classes(cfg, dataset_name: str, key: str, classes_attr: str = "thing_classes"):
    """Raises when ``len(metadata.<classes_attr>)`` differs from the config value at ``key``.

    Args:
        cfg: the config.
        dataset_name: a registered, already loaded dataset.
        key: dotted config key holding the model's class count, e.g.
            ``"MODEL.ROI_HEADS.NUM_CLASSES"``.
        classes_attr: metadata attribute listing the dataset's classes.
    """
    classes = MetadataCatalog.get(dataset_name).get(classes_attr, None)
    if classes is None:
        return
    value = cfg
    for part in key.split("."):
        value = value[part]
    if len(classes) != int(value):
        raise ConfigDataMismatch(
            f"Dataset {dataset_name} has {len(classes)} classes ({classes_attr}: "
            f"{', '.join(map(str, classes[:6]))}{', ...' if len(classes) > 6 else ''}) but {key} "
            f"is {value}: set {key} {len(classes)} (or use a dataset with {value} classes)"
        )
