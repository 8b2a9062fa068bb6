"""Inference on photographs of any size: pad-and-crop, optional overlapping tiles."""

from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .data.faid import MIN_IMAGE_SIZE

# The generators halve the resolution four times: a padded side that is a multiple of 16 keeps
# every skip connection aligned without the decoder's odd-size padding.
SIZE_MULTIPLE = 16


def check_min_size(shape: Tuple[int, ...], name: str) -> None:
    """Raises ``ValueError`` naming ``name`` when an (H, W, ...) image is below 16x16 pixels."""
    h, w = shape[:2]
    min_h, min_w = MIN_IMAGE_SIZE
    if h < min_h or w < min_w:
        raise ValueError(
            f"{name}: image of {w}x{h} pixels is smaller than {min_w}x{min_h}, the least the "
            "generator's four 2x poolings need"
        )


def _pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """(1, 3, H, W) -> reflect-padded on the bottom / right to multiples of ``multiple``."""
    h, w = image.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


@torch.no_grad()
def predict_padded(model, image: torch.Tensor) -> torch.Tensor:
    """One pass of ``model`` (a FlashAmbient meta-architecture in eval mode) at native size.

    Args:
        image: (3, H, W) float on the 0-255 scale.

    Returns:
        (3, H, W) float in [0, 1]: the prediction on the reflect-padded image, cropped back.
    """
    h, w = image.shape[-2:]
    padded = _pad_to_multiple(image[None].float(), SIZE_MULTIPLE)[0]
    out = model([{"image": padded.round().clamp(0, 255).to(torch.uint8)}])[0]["ambient"]
    return out[:, :h, :w].float()


def _tile_starts(length: int, tile: int, overlap: int) -> List[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _ramp(length: int, overlap: int) -> torch.Tensor:
    """1D blending weight: rises linearly over ``overlap`` pixels at both ends (never 0)."""
    pos = torch.arange(length, dtype=torch.float64)
    edge = torch.minimum(pos + 1, length - pos)
    return torch.clamp(edge / (overlap + 1), max=1.0)


@torch.no_grad()
def predict_image(model, image: np.ndarray, tile: int = 0, overlap: int = 32) -> np.ndarray:
    """A flash photograph of any size -> its ambient prediction of the same size.

    Args:
        model: a FlashAmbient meta-architecture in eval mode.
        image: (H, W, 3) uint8 RGB, H and W >= 16.
        tile: 0 runs the whole image at once (pad-and-crop); otherwise square tiles of this side
            (a multiple of 16), overlapping by ``overlap`` pixels and blended with linear ramps,
            bound the memory on large photographs.

    Returns:
        (H, W, 3) float32 in [0, 1].
    """
    check_min_size(image.shape, "flash image")
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
    h, w = x.shape[-2:]
    if tile <= 0 or (h <= tile and w <= tile):
        return predict_padded(model, x).permute(1, 2, 0).numpy().astype(np.float32)
    if tile % SIZE_MULTIPLE or tile < MIN_IMAGE_SIZE[0] or not 0 <= overlap < tile // 2:
        raise ValueError(
            f"tile {tile} must be a multiple of {SIZE_MULTIPLE} and overlap {overlap} in "
            f"[0, tile / 2)"
        )
    total = torch.zeros(3, h, w, dtype=torch.float64)
    weight = torch.zeros(1, h, w, dtype=torch.float64)
    for y in _tile_starts(h, tile, overlap):
        for x0 in _tile_starts(w, tile, overlap):
            patch = x[:, y : y + tile, x0 : x0 + tile]
            th, tw = patch.shape[-2:]
            wgt = _ramp(th, overlap)[:, None] * _ramp(tw, overlap)[None, :]
            total[:, y : y + th, x0 : x0 + tw] += predict_padded(model, patch).double() * wgt
            weight[:, y : y + th, x0 : x0 + tw] += wgt
    return (total / weight).permute(1, 2, 0).numpy().astype(np.float32)
