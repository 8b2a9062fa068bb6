"""Referring segmentation of one sketch + expression with a trained GRMNet (tools and demo)."""

from dataclasses import dataclass

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Instances

from .ops import pad_reference_pool, select_references
from .vocabulary import load_vocabulary


@dataclass
class ReferringResult:
    """Everything in the frame of the resized network input.

    Attributes:
        image: (H, W, 3) uint8 RGB network input.
        instances: referred instances (pred_boxes, pred_masks (H, W) bool, pred_classes, scores).
        proposals: post-NMS RPN proposals (proposal_boxes, objectness_logits).
    """

    image: np.ndarray
    instances: Instances
    proposals: Instances


class ReferringPredictor:
    """Loads ``cfg.MODEL.WEIGHTS`` and answers (sketch, expression) queries."""

    def __init__(self, cfg):
        self.cfg = cfg.clone()
        self.model = build_model(self.cfg).eval()
        DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        self.vocabulary = load_vocabulary(cfg)
        self.resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
        self.input_format = cfg.INPUT.FORMAT

    @torch.no_grad()
    def __call__(self, image_bgr: np.ndarray, expression: str) -> ReferringResult:
        """
        Args:
            image_bgr: (H, W, 3) uint8 sketch as read by OpenCV.
            expression: the referring expression.
        """
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
        return ReferringResult(image[:, :, ::-1].copy(), instances, proposals[0].to("cpu"))

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
