"""Concatenating the sentence feature to image / RoI features, and building the encoder."""

import torch

from ..inference_info import InferenceInfo
from ..language import LanguageEncoder
from ..vocabulary import class_names, load_vocabulary


def language_channels(cfg) -> int:
    """Channels L of the sentence feature (2 * LSTM hidden size)."""
    return 2 * cfg.MODEL.GRMNET.LANGUAGE.HIDDEN_DIM


def build_language_encoder(cfg) -> LanguageEncoder:
    """The BiLSTM encoder sized by the vocabulary that ``cfg`` names."""
    lang = cfg.MODEL.GRMNET.LANGUAGE
    return LanguageEncoder(
        vocab_size=len(load_vocabulary(cfg)),
        embed_dim=lang.EMBED_DIM,
        hidden_dim=lang.HIDDEN_DIM,
        num_layers=lang.NUM_LAYERS,
        dropout=lang.DROPOUT,
        mlp_dim=lang.MLP_DIM,
        pooling=lang.POOLING,
    )


def build_inference_info(cfg) -> InferenceInfo:
    """The vocabulary and category names that a model built from ``cfg`` stores."""
    return InferenceInfo(load_vocabulary(cfg).tokens, class_names(cfg))


def tile_language(language: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(N, L) sentence features -> (N, L, H, W), the spatial size of ``like`` (N, C, H, W)."""
    return language[:, :, None, None].expand(-1, -1, like.shape[2], like.shape[3])
