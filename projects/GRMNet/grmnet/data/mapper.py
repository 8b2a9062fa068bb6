"""Dataset mapper: detectron2's DatasetMapper plus the tokenised expression."""

import copy
import logging

from detectron2.config import configurable
from detectron2.data import transforms as T

from d2common.data.checked_mapper import CheckedDatasetMapper
from d2common.registry import DATASET_MAPPER_REGISTRY

from ..language import Vocabulary
from ..vocabulary import load_vocabulary
from .sketchyscene import MIN_SKETCH_SIZE

logger = logging.getLogger(__name__)


@DATASET_MAPPER_REGISTRY.register()
class GRMDatasetMapper(CheckedDatasetMapper):
    """Maps a (sketch, expression) record to model inputs.

    Adds ``expression`` (str) and ``expression_tokens`` ((MAX_LENGTH,) long) to what
    :class:`DatasetMapper` produces. Horizontal flips are removed from the augmentations: they
    would turn "the tree on the left" into a wrong label. The drawing is fully decoded: an
    unusable one is skipped in training (warning, count) and raises naming the file in testing.
    """

    @configurable
    def __init__(self, is_train: bool = True, *, vocabulary: Vocabulary, max_length: int, **kwargs):
        """
        Args:
            is_train: training mode (annotations kept).
            vocabulary: tokenises expressions.
            max_length: number of token slots (longer expressions are truncated).
            kwargs: arguments of :class:`DatasetMapper`.
        """
        augmentations = list(kwargs.pop("augmentations"))
        kept = [a for a in augmentations if not isinstance(a, T.RandomFlip)]
        if len(kept) != len(augmentations):
            logger.warning("GRMDatasetMapper drops RandomFlip: flips change left/right meanings.")
        super().__init__(is_train, augmentations=kept, **kwargs)
        self.vocabulary = vocabulary
        self.max_length = max_length

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        ret = super().from_config(cfg, is_train)
        ret["vocabulary"] = load_vocabulary(cfg)
        ret["max_length"] = cfg.MODEL.GRMNET.LANGUAGE.MAX_LENGTH
        ret["min_image_size"] = MIN_SKETCH_SIZE
        return ret

    def __call__(self, dataset_dict):
        if "expression" not in dataset_dict:
            raise KeyError(f"record {dataset_dict.get('file_name')} has no 'expression'")
        expression = dataset_dict["expression"]
        out = super().__call__(copy.copy(dataset_dict))
        if out is None:  # skipped in training
            return None
        out["expression"] = expression
        out["expression_tokens"] = self.vocabulary.encode(expression, self.max_length)
        return out
