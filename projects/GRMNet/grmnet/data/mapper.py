"""Dataset mapper: detectron2's DatasetMapper plus the tokenised expression."""

import copy
import logging

import numpy as np
from detectron2.config import configurable
from detectron2.data import transforms as T

from d2common.data.checked_mapper import CheckedDatasetMapper
from d2common.registry import DATASET_MAPPER_REGISTRY

from ..language import Vocabulary, mirror_expression
from ..vocabulary import load_vocabulary
from .sketchyscene import MIN_SKETCH_SIZE

logger = logging.getLogger(__name__)


@DATASET_MAPPER_REGISTRY.register()
class GRMDatasetMapper(CheckedDatasetMapper):
    """Maps a (sketch, expression) record to model inputs.

    Adds ``expression`` (str) and ``expression_tokens`` ((MAX_LENGTH,) long) to what
    :class:`DatasetMapper` produces. detectron2's horizontal flips are removed from the
    augmentations: they would turn "the tree on the left" into a wrong label. Instead, with
    ``hflip_prob`` > 0, training samples are flipped with that probability and their expression
    mirrored ("left" <-> "right", "leftmost" <-> "rightmost"). The drawing is fully decoded: an
    unusable one is skipped in training (warning, count) and raises naming the file in testing.
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        vocabulary: Vocabulary,
        max_length: int,
        hflip_prob: float = 0.0,
        **kwargs,
    ):
        """
        Args:
            is_train: training mode (annotations kept).
            vocabulary: tokenises expressions.
            max_length: number of token slots (longer expressions are truncated).
            hflip_prob: probability of a flip with mirrored expression (training only).
            kwargs: arguments of :class:`DatasetMapper`.
        """
        augmentations = list(kwargs.pop("augmentations"))
        kept = [a for a in augmentations if not isinstance(a, T.RandomFlip)]
        if len(kept) != len(augmentations):
            logger.warning("GRMDatasetMapper drops RandomFlip: flips change left/right meanings.")
        super().__init__(is_train, augmentations=kept, **kwargs)
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.hflip_prob = float(hflip_prob) if is_train else 0.0
        # the same augmentations followed by a certain horizontal flip
        self._flip_augmentations = T.AugmentationList(
            kept + [T.RandomFlip(prob=1.0, horizontal=True, vertical=False)]
        )

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        ret = super().from_config(cfg, is_train)
        ret["vocabulary"] = load_vocabulary(cfg)
        ret["max_length"] = cfg.MODEL.GRMNET.LANGUAGE.MAX_LENGTH
        ret["min_image_size"] = MIN_SKETCH_SIZE
        ret["hflip_prob"] = cfg.INPUT.GRMNET.HFLIP_PROB
        return ret

    def __call__(self, dataset_dict):
        if "expression" not in dataset_dict:
            raise KeyError(f"record {dataset_dict.get('file_name')} has no 'expression'")
        expression = dataset_dict["expression"]
        flip = self.hflip_prob > 0 and np.random.rand() < self.hflip_prob
        if flip:
            expression = mirror_expression(expression)
            augmentations, self.augmentations = self.augmentations, self._flip_augmentations
        try:
            out = super().__call__(copy.copy(dataset_dict))
        finally:
            if flip:
                self.augmentations = augmentations
        if out is None:  # skipped in training
            return None
        out["expression"] = expression
        out["expression_tokens"] = self.vocabulary.encode(expression, self.max_length)
        return out
