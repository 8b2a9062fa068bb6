"""Referring segmentation of one sketch + expression with a trained GRMNet (tools and demo)."""

import logging
from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Instances

from .language import Vocabulary
from .ops import pad_reference_pool, select_references
from .vocabulary import checkpoint_info, class_names, load_vocabulary

logger = logging.getLogger(__name__)


@dataclass
class ReferringResult:
    """Everything in the frame of the resized network input.

    Attributes:
        image: (H, W, 3) uint8 RGB network input.
        instances: referred instances (pred_boxes, pred_masks (H, W) bool, pred_classes, scores,
            proposal_index: the proposal the box head classified into each instance).
        proposals: post-NMS RPN proposals (proposal_boxes, objectness_logits).
        unknown_words: words of the expression read as ``<unk>``.
    """

    image: np.ndarray
    instances: Instances
    proposals: Instances
    unknown_words: List[str] = field(default_factory=list)

    def select(self, keep: torch.Tensor) -> "ReferringResult":
        """The same result with only the instances where ``keep`` ((R,) bool) holds."""
        return ReferringResult(self.image, self.instances[keep], self.proposals, self.unknown_words)


class ReferringPredictor:
    """Loads ``cfg.MODEL.WEIGHTS`` and answers (sketch, expression) queries.

    The vocabulary and category names come from the checkpoint when it carries them (every
    checkpoint of a model built by this version does), so no dataset needs to be present.

    Attributes:
        vocabulary: the model's :class:`Vocabulary`.
        class_names: category names, indexed by ``pred_classes``.
    """

    def __init__(self, cfg):
        self.cfg = cfg.clone()
        self.model = build_model(self.cfg).eval()
        DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        stored = self.model.stored_info()
        expected = checkpoint_info(cfg)
        if expected is not None and stored.vocabulary != expected.vocabulary:
            raise ValueError(
                f"{cfg.MODEL.WEIGHTS} was trained with another vocabulary than "
                f"MODEL.GRMNET.LANGUAGE.VOCAB_FILE={cfg.MODEL.GRMNET.LANGUAGE.VOCAB_FILE}: "
                "leave VOCAB_FILE empty to use the checkpoint's"
            )
        self.vocabulary = (
            Vocabulary(stored.vocabulary) if stored.vocabulary else load_vocabulary(cfg)
        )
        self.class_names = list(stored.thing_classes or class_names(cfg))
        self.resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
        self.input_format = cfg.INPUT.FORMAT

    @torch.no_grad()
    def __call__(self, image_bgr: np.ndarray, expression: str) -> ReferringResult:
        """
        Args:
            image_bgr: (H, W, 3) uint8 sketch as read by OpenCV.
            expression: the referring expression.
        """
        unknown = self.vocabulary.unknown_words(expression)
        if unknown:
            logger.warning(
                "%r: %d word(s) not in the model's vocabulary, read as <unk>: %s",
                expression, len(unknown), ", ".join(unknown),
            )  # fmt: skip
        image = self.resize.get_transform(image_bgr).apply_image(image_bgr)
        net_input = image if self.input_format == "BGR" else image[:, :, ::-1]
        inputs = {
            "image": torch.as_tensor(np.ascontiguousarray(net_input.transpose(2, 0, 1))),
            "expression_tokens": self.vocabulary.encode(
                expression, self.cfg.MODEL.GRMNET.LANGUAGE.MAX_LENGTH
            ),
        }
        results, proposals, sizes = self.model.inference_with_proposals([inputs])
        instances = detector_postprocess(results[0], *sizes[0]).to("cpu")
        return ReferringResult(image[:, :, ::-1].copy(), instances, proposals[0].to("cpu"), unknown)

    @staticmethod
    def classified_proposal(result: ReferringResult, index: int) -> torch.Tensor:
        """(4,) XYXY box of the proposal that the box head classified into detection ``index``
        (the RoI whose references the box head saw; the detection is its regressed box)."""
        return result.proposals.proposal_boxes.tensor[int(result.instances.proposal_index[index])]

    def references(self, result: ReferringResult, box: torch.Tensor):
        """The GRM references of ``box`` ((4,) XYXY) among the result's proposals.

        Returns:
            boxes (K', 4), objectness probabilities (K',), in reference order.
        """
        g = self.cfg.MODEL.GRMNET.GRM
        pool = pad_reference_pool(
            [result.proposals.proposal_boxes.tensor], [result.proposals.objectness_logits]
        )
        refs, valid = select_references(
            box[None].float(), torch.zeros(1, dtype=torch.long), *pool, g.TOP_K, g.MANNER
        )
        refs, valid = refs[0][valid[0]], valid[0]
        # objectness of each chosen reference, found by exact box match in the pool
        match = (pool[0][0][None] == refs[:, None]).all(-1).float().argmax(1)
        return refs, torch.sigmoid(pool[1][0][match])
