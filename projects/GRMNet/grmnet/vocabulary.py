"""Resolves the vocabulary a config uses (explicit file, else the dataset's ``vocab.txt``)."""

import functools

from detectron2.data import MetadataCatalog

from .data.builtin import prepare_dataset
from .language import Vocabulary


@functools.lru_cache(maxsize=8)
def _read(path: str) -> Vocabulary:
    return Vocabulary.from_file(path)


def vocabulary_file(cfg) -> str:
    """``MODEL.GRMNET.LANGUAGE.VOCAB_FILE``, else the ``vocab_file`` metadata of the first
    training (or test) dataset, generating toy data first if needed."""
    path = cfg.MODEL.GRMNET.LANGUAGE.VOCAB_FILE
    if path:
        return path
    names = list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST)
    if not names:
        raise ValueError("set MODEL.GRMNET.LANGUAGE.VOCAB_FILE or DATASETS.TRAIN / DATASETS.TEST")
    prepare_dataset(names[0])
    path = MetadataCatalog.get(names[0]).get("vocab_file", None)
    if path is None:
        raise ValueError(
            f"dataset {names[0]!r} has no 'vocab_file' metadata: "
            "set MODEL.GRMNET.LANGUAGE.VOCAB_FILE"
        )
    return path


def load_vocabulary(cfg) -> Vocabulary:
    """The :class:`Vocabulary` of ``cfg`` (cached per file)."""
    return _read(vocabulary_file(cfg))
