"""Figure-6-style panels: flash | output | ambient (when known) | attention map."""

from typing import Optional

import numpy as np
import torch

from d2common.visualization import colorize, panel_grid

from .ops import attention_map


def comparison_panel(
    flash: np.ndarray, output: np.ndarray, ambient: Optional[np.ndarray] = None
) -> np.ndarray:
    """HxWx3 uint8 RGB images -> one RGB grid image with titled panels."""
    panels = [("flash", flash), ("output", output)]
    if ambient is not None:
        panels.append(("ambient", ambient))
        to_t = lambda im: torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
        attention = attention_map(to_t(ambient), to_t(flash))[0, 0].numpy()
        panels.append(("attention M", colorize(attention, 0.0, 1.0)))
    return panel_grid(panels, columns=len(panels), height=flash.shape[0])
