"""Reading and writing Zero-DCE++ weights in the release's layout (``e_conv1.depth_conv.weight``
... ``e_conv7.point_conv.bias``), so the authors' ``Epoch99.pth`` and our checkpoints are
interchangeable."""

import os
from typing import Dict

import torch
from torch import nn

_WRAPPERS = ("state_dict", "model")


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint file: a plain state dict, or one under ``"state_dict"`` /
    ``"model"``; a ``module.`` prefix (DataParallel) is stripped. Raises naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Zero-DCE++ weights not found: {path!r}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike
        raise ValueError(f"cannot read Zero-DCE++ weights {path!r}: {e}") from e
    for key in _WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path!r} does not hold a state dict of tensors (got {type(obj)})")
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in obj.items()}


def load_zero_dce_weights(model: nn.Module, path: str) -> nn.Module:
    """Loads ``path`` into ``model`` (a :class:`ZeroDCEPP`) strictly.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable, missing or unexpected keys, or shapes that differ; the message
            names the file and the keys.
    """
    state = read_state_dict(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path!r} is not a Zero-DCE++ state dict: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    wrong = [
        f"{k}: {tuple(v.shape)} instead of {tuple(expected[k].shape)}"
        for k, v in state.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise ValueError(f"{path!r}: tensors of the wrong shape: {wrong}")
    model.load_state_dict(state)
    return model


def save_zero_dce_weights(model: nn.Module, path: str) -> None:
    """Writes the plain state dict (the release's layout, loadable by its own test script)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, path)
