"""What a GRMNet checkpoint carries besides its weights: the vocabulary and the category names.

The model keeps both as one persistent uint8 buffer (``inference_info``, UTF-8 JSON), so every
checkpoint of its state dict (the trainer's, ``DetectionCheckpointer(model).save``) holds them
and inference needs no dataset: :func:`read_checkpoint_info` reads them back before the model is
built (the word embedding is sized by the vocabulary).
"""

import json
import logging
import os
import pickle
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

logger = logging.getLogger(__name__)

# Key of the buffer in the model's state dict.
STATE_KEY = "inference_info"


@dataclass(frozen=True)
class InferenceInfo:
    """Vocabulary tokens (``<pad>``, ``<unk>`` first) and category names of a model."""

    vocabulary: Tuple[str, ...]
    thing_classes: Tuple[str, ...]

    def __init__(self, vocabulary: Sequence[str], thing_classes: Sequence[str] = ()):
        object.__setattr__(self, "vocabulary", tuple(str(t) for t in vocabulary))
        object.__setattr__(self, "thing_classes", tuple(str(c) for c in thing_classes))

    def to_tensor(self) -> torch.Tensor:
        """(B,) uint8: the UTF-8 bytes of the JSON ``{"vocabulary": [...], "thing_classes":
        [...]}``."""
        text = json.dumps(
            {"vocabulary": list(self.vocabulary), "thing_classes": list(self.thing_classes)}
        )
        return torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor, where: str = "checkpoint") -> "InferenceInfo":
        """Inverse of :meth:`to_tensor`. Raises ValueError naming ``where`` on bad content."""
        try:
            data = json.loads(bytes(tensor.cpu().to(torch.uint8).tolist()).decode("utf-8"))
            return cls(data["vocabulary"], data.get("thing_classes", ()))
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{where}: unreadable '{STATE_KEY}' ({type(e).__name__}: {e})") from e


def _local_checkpoint(path: str) -> bool:
    # detectron2:// and http(s):// URLs and detectron2's .pkl files are ImageNet / Caffe2
    # weights: they never carry GRMNet's information and are not read here.
    return bool(path) and path.endswith(".pth") and os.path.isfile(path)


def read_checkpoint_info(path: str) -> Optional[InferenceInfo]:
    """The :class:`InferenceInfo` stored in a GRMNet checkpoint, or None when ``path`` is empty,
    not a local ``.pth`` file, or a checkpoint without it (e.g. saved by an older version).

    Raises:
        ValueError: the checkpoint cannot be read or its information is corrupt (names the file).
    """
    if not _local_checkpoint(path):
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError) as e:
        raise ValueError(f"cannot read checkpoint {path} ({type(e).__name__}: {e})") from e
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        return None
    tensor = state.get(STATE_KEY, state.get("module." + STATE_KEY))
    if tensor is None:
        logger.info("%s carries no vocabulary / category names (older checkpoint)", path)
        return None
    return InferenceInfo.from_tensor(tensor, where=path)
