"""GRMNet: Mask R-CNN + language model + Global Reference Mechanism (Fig. 2)."""

from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.structures import Instances
from torch import nn

from ..inference_info import STATE_KEY, InferenceInfo
from .language_fusion import build_inference_info, build_language_encoder


@META_ARCH_REGISTRY.register()
class GRMNet(GeneralizedRCNN):
    """A GeneralizedRCNN conditioned on a referring expression.

    Each input dict carries ``expression_tokens`` ((T,) long, from ``GRMDatasetMapper``); the
    encoded sentence is passed to the proposal generator (``GRMRPN``) and the RoI heads
    (``GRMROIHeads``). Outputs are the instances that the expression refers to.
    """

    @configurable
    def __init__(
        self,
        *,
        language_encoder: nn.Module,
        inference_info: Optional[InferenceInfo] = None,
        **kwargs,
    ):
        """
        Args:
            language_encoder: maps (N, T) token ids to (N, L) sentence features.
            inference_info: vocabulary and category names, stored in the state dict (buffer
                ``inference_info``) so that checkpoints carry them.
            kwargs: arguments of :class:`GeneralizedRCNN`.
        """
        super().__init__(**kwargs)
        if self.proposal_generator is None:
            raise ValueError("GRMNet needs a proposal generator (MODEL.PROPOSAL_GENERATOR.NAME)")
        self.language_encoder = language_encoder
        info = inference_info if inference_info is not None else InferenceInfo(())
        self.register_buffer(STATE_KEY, info.to_tensor(), persistent=True)

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        ret["language_encoder"] = build_language_encoder(cfg)
        ret["inference_info"] = build_inference_info(cfg)
        return ret

    def stored_info(self) -> InferenceInfo:
        """The vocabulary and category names this model was built (or loaded) with."""
        return InferenceInfo.from_tensor(self._buffers[STATE_KEY], where="GRMNet")

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing, unexpected, error_msgs
    ):
        # A checkpoint trained with other words would map its embedding rows to the wrong
        # tokens: refuse it. Otherwise the checkpoint's category names replace the model's.
        key = prefix + STATE_KEY
        if key in state_dict:
            theirs = InferenceInfo.from_tensor(state_dict[key], where="checkpoint")
            ours = self.stored_info()
            if ours.vocabulary and theirs.vocabulary != ours.vocabulary:
                error_msgs.append(
                    f"the checkpoint's vocabulary ({len(theirs.vocabulary)} tokens) differs from "
                    f"the model's ({len(ours.vocabulary)} tokens, MODEL.GRMNET.LANGUAGE."
                    "VOCAB_FILE): leave VOCAB_FILE empty to use the checkpoint's"
                )
            else:
                self._buffers[STATE_KEY] = theirs.to_tensor().to(self._buffers[STATE_KEY].device)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing, unexpected, error_msgs
        )

    def encode_expressions(self, batched_inputs: List[Dict]) -> torch.Tensor:
        """(N, L) sentence features of the inputs' ``expression_tokens``."""
        if any("expression_tokens" not in x for x in batched_inputs):
            raise KeyError("GRMNet inputs need 'expression_tokens' (use GRMDatasetMapper)")
        tokens = torch.stack([x["expression_tokens"] for x in batched_inputs]).to(self.device)
        return self.language_encoder(tokens)

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        features = self.backbone(images.tensor)
        language = self.encode_expressions(batched_inputs)
        proposals, proposal_losses = self.proposal_generator(
            images, features, gt_instances, language=language
        )
        _, detector_losses = self.roi_heads(
            images, features, proposals, gt_instances, language=language
        )
        losses = {}
        losses.update(detector_losses)
        losses.update(proposal_losses)
        return losses

    def inference(
        self,
        batched_inputs: List[Dict[str, torch.Tensor]],
        detected_instances: Optional[List[Instances]] = None,
        do_postprocess: bool = True,
    ):
        """Referred instances of every (image, expression) input; see GeneralizedRCNN."""
        if detected_instances is not None:
            raise NotImplementedError("GRMNet recomputes references from its own proposals")
        assert not self.training
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        language = self.encode_expressions(batched_inputs)
        proposals, _ = self.proposal_generator(images, features, None, language=language)
        results, _ = self.roi_heads(images, features, proposals, None, language=language)
        if do_postprocess:
            return GeneralizedRCNN._postprocess(results, batched_inputs, images.image_sizes)
        return results

    def inference_with_proposals(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """Like :meth:`inference` (postprocessed) but also returns the RPN proposals per image
        (in input-image coordinates), for visualising the references."""
        assert not self.training
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        language = self.encode_expressions(batched_inputs)
        proposals, _ = self.proposal_generator(images, features, None, language=language)
        results, _ = self.roi_heads(images, features, proposals, None, language=language)
        return results, proposals, images.image_sizes
