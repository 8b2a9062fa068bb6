"""Start-up checks of a GRMNet config against its datasets (run for every train / test set)."""

import logging
import os
from collections import Counter

from detectron2.data import MetadataCatalog

from d2common.checks import ConfigDataMismatch, check_num_classes, register_dataset_check

from ..language import Vocabulary, tokenize
from .sketchyscene import read_expression_file

logger = logging.getLogger(__name__)


@register_dataset_check
def check_grmnet_dataset(cfg, dataset_name: str) -> None:
    """Class count against ``MODEL.ROI_HEADS.NUM_CLASSES`` and the dataset's words against the
    language encoder's vocabulary (``MODEL.GRMNET.LANGUAGE.VOCAB_FILE``).

    Raises:
        ConfigDataMismatch: with the key to set.
    """
    if cfg.MODEL.META_ARCHITECTURE != "GRMNet":
        return
    check_num_classes(cfg, dataset_name, "MODEL.ROI_HEADS.NUM_CLASSES")
    check_vocabulary(cfg, dataset_name)


def check_vocabulary(cfg, dataset_name: str) -> None:
    """Raises when words of the dataset's expressions are missing from the vocabulary the
    language encoder is sized by but present in the dataset's own ``vocab_file``.

    Words unknown to both vocabularies and expressions longer than
    ``MODEL.GRMNET.LANGUAGE.MAX_LENGTH`` (truncated) are warned about with their fraction.
    The dataset needs the ``expressions_file`` metadata; otherwise nothing is checked.
    """
    from ..vocabulary import load_vocabulary, vocabulary_source

    meta = MetadataCatalog.get(dataset_name)
    expressions_file = meta.get("expressions_file", None)
    if not expressions_file or not os.path.isfile(expressions_file):
        return
    vocabulary, vocab_path = load_vocabulary(cfg), vocabulary_source(cfg)
    max_length = cfg.MODEL.GRMNET.LANGUAGE.MAX_LENGTH
    words, num_expressions, num_truncated = Counter(), 0, 0
    for entry in read_expression_file(expressions_file):
        for expression in entry["sen_instIdx_map"]:
            tokens = tokenize(expression)
            words.update(tokens)
            num_expressions += 1
            num_truncated += len(tokens) > max_length
    if num_truncated:
        logger.warning(
            "%s: %d of %d expressions are longer than MODEL.GRMNET.LANGUAGE.MAX_LENGTH=%d "
            "tokens and are truncated",
            dataset_name, num_truncated, num_expressions, max_length,
        )  # fmt: skip
    unknown = Counter({w: n for w, n in words.items() if w not in vocabulary.index})
    if not unknown:
        return
    fraction = sum(unknown.values()) / sum(words.values())
    examples = ", ".join(repr(w) for w, _ in unknown.most_common(5))
    text = (
        f"{100 * fraction:.3g}% of the words of the expressions of {dataset_name} "
        f"({len(unknown)} distinct, e.g. {examples}) are not in the language encoder's "
        f"vocabulary {vocab_path} ({len(vocabulary)} tokens)"
    )
    own_path = meta.get("vocab_file", None)
    if (
        own_path
        and os.path.isfile(own_path)
        and os.path.abspath(own_path) != os.path.abspath(vocab_path)
    ):
        own = Vocabulary.from_file(own_path)
        if any(w in own.index for w in unknown):
            raise ConfigDataMismatch(
                f"{text} but are in the dataset's vocabulary {own_path} ({len(own)} tokens): "
                f"the model would read them as <unk>. Set MODEL.GRMNET.LANGUAGE.VOCAB_FILE "
                f"{own_path} (and train with it)"
            )
    logger.warning("%s: they are read as <unk>", text)
