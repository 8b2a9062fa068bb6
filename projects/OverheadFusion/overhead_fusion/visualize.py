"""Figure panels like the paper's Figs. 6-7: views, quality maps, fused image, prediction, GT."""

from typing import List, Tuple

import numpy as np
import torch

from d2common.visualization import colorize, panel_grid

__all__ = ["fusion_panels", "fusion_figure", "to_hwc"]


def to_hwc(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) float numpy."""
    return image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()


def fusion_panels(
    inputs: dict, output: dict, class_colors: np.ndarray
) -> List[Tuple[str, np.ndarray]]:
    """Titled panels of one sample.

    Args:
        inputs: a mapper output ("views", optionally "image", "sem_seg").
        output: the model's output for it ("quality", "fused", "sem_seg").
        class_colors: (C, 3) uint8 colours of the classes.
    """
    panels = []
    for j, view in enumerate(inputs["views"]):
        panels.append((f"view {j + 1}", to_hwc(view)))
        panels.append((f"quality {j + 1}", colorize(output["quality"][j].cpu().numpy(), 0.0, 1.0)))
    panels.append(("fused", to_hwc(output["fused"])))
    if "image" in inputs:
        panels.append(("clean", to_hwc(inputs["image"])))
    panels.append(("prediction", class_colors[output["sem_seg"].argmax(0).cpu().numpy()]))
    if "sem_seg" in inputs:
        labels = inputs["sem_seg"].cpu().numpy().copy()
        labels[labels >= len(class_colors)] = 0
        panels.append(("ground truth", class_colors[labels]))
    return panels


def fusion_figure(inputs: dict, output: dict, class_colors: np.ndarray, height: int = 160):
    """One RGB uint8 figure: (view, quality) pairs, then fused, clean, prediction, GT."""
    panels = fusion_panels(inputs, output, class_colors)
    return panel_grid(panels, columns=max(4, 2 * len(inputs["views"])), height=height)
