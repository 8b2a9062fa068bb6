"""Resolves the vocabulary and category names a config uses.

Vocabulary: ``MODEL.GRMNET.LANGUAGE.VOCAB_FILE``, else the one stored in the checkpoint
``MODEL.WEIGHTS``, else the ``vocab_file`` of the first training (or test) dataset. Category
names: the checkpoint's, else the dataset metadata's ``thing_classes``. With a trained checkpoint
neither needs the dataset's files.
"""

import functools
import os
from typing import Optional, Tuple

from detectron2.data import MetadataCatalog

from .data.builtin import prepare_dataset
from .inference_info import InferenceInfo, read_checkpoint_info
from .language import Vocabulary


@functools.lru_cache(maxsize=8)
def _read(path: str) -> Vocabulary:
    return Vocabulary.from_file(path)


@functools.lru_cache(maxsize=8)
def _checkpoint_info(path: str, mtime_ns: int, size: int) -> Optional[InferenceInfo]:
    return read_checkpoint_info(path)


def checkpoint_info(cfg) -> Optional[InferenceInfo]:
    """The :class:`InferenceInfo` of ``cfg.MODEL.WEIGHTS`` (cached per file version), or None."""
    path = cfg.MODEL.WEIGHTS
    if not path or not os.path.isfile(path):
        return None
    stat = os.stat(path)
    return _checkpoint_info(path, stat.st_mtime_ns, stat.st_size)


def _dataset_names(cfg):
    return list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST)


def vocabulary_source(cfg) -> str:
    """Where the vocabulary of ``cfg`` comes from: a file path, or ``checkpoint <path>``.

    Generates toy data first when the vocabulary is a toy dataset's ``vocab.txt``.
    """
    path = cfg.MODEL.GRMNET.LANGUAGE.VOCAB_FILE
    if path:
        return path
    if checkpoint_info(cfg) is not None:
        return f"checkpoint {cfg.MODEL.WEIGHTS}"
    names = _dataset_names(cfg)
    if not names:
        raise ValueError(
            "set MODEL.GRMNET.LANGUAGE.VOCAB_FILE, MODEL.WEIGHTS (a trained GRMNet checkpoint) "
            "or DATASETS.TRAIN / DATASETS.TEST"
        )
    prepare_dataset(names[0])
    path = MetadataCatalog.get(names[0]).get("vocab_file", None)
    if path is None:
        raise ValueError(
            f"dataset {names[0]!r} has no 'vocab_file' metadata: "
            "set MODEL.GRMNET.LANGUAGE.VOCAB_FILE"
        )
    return path


def load_vocabulary(cfg) -> Vocabulary:
    """The :class:`Vocabulary` of ``cfg`` (see :func:`vocabulary_source`; cached)."""
    source = vocabulary_source(cfg)
    if not cfg.MODEL.GRMNET.LANGUAGE.VOCAB_FILE and source.startswith("checkpoint "):
        return Vocabulary(checkpoint_info(cfg).vocabulary)
    return _read(source)


def class_names(cfg) -> Tuple[str, ...]:
    """Category names: the checkpoint's, else ``thing_classes`` of the first dataset, else ()."""
    info = checkpoint_info(cfg)
    if info is not None and info.thing_classes:
        return info.thing_classes
    for name in _dataset_names(cfg):
        names = MetadataCatalog.get(name).get("thing_classes", None)
        if names:
            return tuple(names)
    return ()
