"""How far a model's features of a low-light image are from those of the same scene in normal
light: the feature-level view of the paper's denoising claim."""

from typing import Dict, Iterable, List, Tuple

import numpy as np
import torch

from .modeling.backbone import WeightedNonLocalResNet


def backbone_features(model, images_rgb: List[np.ndarray]) -> Dict[str, torch.Tensor]:
    """Stage outputs of the ResNet (res2..res5, after their NL blocks) and the FPN levels of
    ``model`` for a batch of (H, W, 3) uint8 RGB images of one size.

    Returns:
        {name: (B, C, h, w)} for every ResNet stage and FPN output.
    """
    fmt = getattr(model, "input_format", "BGR")
    tensors = [
        torch.as_tensor(np.ascontiguousarray(im[:, :, ::-1] if fmt == "BGR" else im))
        .permute(2, 0, 1)
        .float()
        for im in images_rgb
    ]
    batch = model.preprocess_image([{"image": t} for t in tensors]).tensor
    backbone = model.backbone
    bottom_up = getattr(backbone, "bottom_up", backbone)
    with torch.no_grad():
        features = dict(bottom_up(batch))
        if bottom_up is not backbone:
            features.update(backbone(batch))
    return features


def relative_distances(model, pairs: Iterable[Tuple[np.ndarray, np.ndarray]]) -> Dict[str, float]:
    """Mean over pairs of ``||f(low) - f(normal)|| / ||f(normal)||`` per feature map.

    Args:
        model: a detectron2 R-CNN-style model (``preprocess_image``, ``backbone``), in eval mode.
        pairs: (low-light, normal-light) (H, W, 3) uint8 RGB renderings of the same scene.

    Returns:
        {feature name: mean relative distance}.
    """
    sums: Dict[str, float] = {}
    count = 0
    for low, normal in pairs:
        f_low = backbone_features(model, [low])
        f_normal = backbone_features(model, [normal])
        for name, ref in f_normal.items():
            distance = float((f_low[name] - ref).norm() / ref.norm().clamp_min(1e-12))
            sums[name] = sums.get(name, 0.0) + distance
        count += 1
    if not count:
        raise ValueError("relative_distances needs at least one (low, normal) pair")
    return {name: total / count for name, total in sums.items()}


def has_nonlocal_blocks(model) -> bool:
    """Whether ``model`` has a :class:`WeightedNonLocalResNet` with at least one block."""
    return any(
        isinstance(m, WeightedNonLocalResNet) and len(m.nonlocal_blocks) for m in model.modules()
    )
