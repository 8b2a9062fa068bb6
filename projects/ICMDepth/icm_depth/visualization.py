"""Panels of image, predicted depth, GT depth and cluster memberships (argmax of A1, Fig. 4)."""

import itertools
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from d2common.visualization import colorize, label_colors, panel_grid, save_rgb

from .data.mapper import ICMDepthDatasetMapper


def load_model(cfg, weights: Optional[str] = None):
    """Builds the model of ``cfg`` in eval mode and loads ``weights`` (default MODEL.WEIGHTS)."""
    model = build_model(cfg)
    DetectionCheckpointer(model).load(weights or cfg.MODEL.WEIGHTS)
    return model.eval()


def sample_panels(
    cfg, sample: dict, outputs: Sequence[Tuple[str, dict]], max_depth: float = 80.0
) -> List[Tuple[str, np.ndarray]]:
    """Titled images of one mapped sample and the outputs of one or more models.

    Args:
        sample: mapper output (``image``, ``depth``).
        outputs: (label, model output) pairs; each adds its depth and its F3 cluster map.
    """
    image = sample["image"].permute(1, 2, 0).numpy()
    if cfg.INPUT.FORMAT == "BGR":
        image = image[:, :, ::-1]
    gt = sample["depth"].numpy()
    hi = min(max_depth, float(gt.max()) if (gt > 0).any() else max_depth)
    panels = [("image", image), ("GT depth", colorize(gt, 0, hi, invalid=gt <= 0))]
    colors = label_colors(256, seed=5)
    for label, out in outputs:
        pred = out["depth"].float().cpu().numpy()
        clusters = out["cluster_maps"][-1].cpu().numpy()
        panels.append((f"{label}: depth", colorize(pred, 0, hi)))
        panels.append((f"{label}: argmax A1 (F3)", colors[(clusters + 1) % 256]))
    return panels


def visualize_dataset(
    cfg,
    models: Sequence[Tuple[str, torch.nn.Module]],
    dataset_name: str,
    output_dir: str,
    num: int = 4,
) -> List[str]:
    """Writes one PNG per sample of ``dataset_name`` with every model's depth and clusters."""
    mapper = ICMDepthDatasetMapper(cfg, False)
    paths = []
    for i, record in enumerate(itertools.islice(DatasetCatalog.get(dataset_name), num)):
        sample = mapper(record)
        with torch.no_grad():
            outs = [(label, model([sample])[0]) for label, model in models]
        grid = panel_grid(sample_panels(cfg, sample, outs), columns=2 + 2 * len(models), height=160)
        paths.append(save_rgb(os.path.join(output_dir, f"icm_depth_{i:02d}.png"), grid))
    return paths
