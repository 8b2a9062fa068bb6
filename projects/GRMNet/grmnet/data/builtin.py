"""Registers SketchyScene-Matching and the toy dataset under ``d2common.data.datasets_root()``."""

import logging
import os
from typing import Callable, Dict

from detectron2.data import DatasetCatalog

from d2common.data import datasets_root, ensure_generated, register_dataset_once

from .categories import SKETCHYSCENE_CATEGORIES
from .sketchyscene import expressions_path, load_sketchyscene_matching
from .toy import TOY_VERSION, generate_toy_dataset, toy_version

logger = logging.getLogger(__name__)

# name -> (directory under the datasets root, split)
_PREDEFINED_SPLITS = {
    "sketchyscene_matching_train": ("sketchyscene", "train"),
    "sketchyscene_matching_val": ("sketchyscene", "val"),
    "sketchyscene_matching_test": ("sketchyscene", "test"),
    "grmnet_toy_train": ("toy/grmnet", "train"),
    "grmnet_toy_val": ("toy/grmnet", "val"),
}
TOY_SEED = 0

# name -> function making sure the files exist (toy data is generated on first use).
_PREPARE: Dict[str, Callable[[], str]] = {}


def prepare_dataset(name: str) -> None:
    """Generates a toy dataset's files if needed; a no-op for datasets the user provides."""
    if name in _PREPARE:
        _PREPARE[name]()


def set_aside_stale_toy_data(target: str) -> None:
    """Renames complete toy data made by another generator version to ``<target>.v<version>``
    (kept, not deleted) so that it is generated again."""
    if not os.path.exists(os.path.join(target, ".complete")):
        return
    version = toy_version(target)
    if version == TOY_VERSION:
        return
    stale = f"{target}.v{version}.{os.getpid()}"
    try:
        os.rename(target, stale)
    except OSError:  # another process moved it first
        return
    logger.warning("toy data %s is of generator version %d: moved to %s", target, version, stale)


def _loader(root: str, split: str, prepare: Callable[[], str] = None):
    def load():
        if prepare is not None:
            prepare()
        return load_sketchyscene_matching(root, split)

    return load


def register_all_sketchyscene_matching(root: str) -> None:
    """Registers every split of ``_PREDEFINED_SPLITS`` under ``root``."""
    for name, (subdir, split) in _PREDEFINED_SPLITS.items():
        if name in DatasetCatalog.list():
            continue
        dataset_root = os.path.join(root, subdir)
        prepare = None
        if subdir.startswith("toy/"):

            def prepare(target=dataset_root):
                set_aside_stale_toy_data(target)
                return ensure_generated(target, lambda d: generate_toy_dataset(d, seed=TOY_SEED))

            _PREPARE[name] = prepare
        register_dataset_once(
            name,
            _loader(dataset_root, split, prepare),
            thing_classes=list(SKETCHYSCENE_CATEGORIES),
            vocab_file=os.path.join(dataset_root, "vocab.txt"),
            expressions_file=expressions_path(dataset_root, split),
            dataset_root=dataset_root,
            evaluator_type="coco",
        )


register_all_sketchyscene_matching(datasets_root())
