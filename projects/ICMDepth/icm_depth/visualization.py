"""Depth panels (image, GT, prediction with a colour bar, error map, argmax of A1 as in Fig. 4)
and a diagnostic of the ICM loss's Hungarian matches (A1 of each matched cluster beside G of its
instance, at each resolution)."""

import itertools
import os
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from d2common.visualization import colorize, label_colors, panel_grid, save_rgb

from .data.mapper import ICMDepthDatasetMapper
from .ops import (
    fcm_memberships,
    hungarian_match,
    icm_cost,
    instance_median_depth,
    pool_memberships,
)

# abs_rel mapped to the ends of the error map's colour scale.
MAX_ABS_REL = 0.5


def check_weights(weights: str, what: str = "--weights") -> str:
    """Returns ``weights`` if it names a checkpoint: an existing file or a URL.

    Raises:
        FileNotFoundError: for "" or a missing file (an untrained model would be drawn).
    """
    if not weights:
        raise FileNotFoundError(
            f"{what} is empty: a checkpoint is needed, an untrained model would be drawn"
        )
    if "://" not in weights and not os.path.isfile(weights):
        raise FileNotFoundError(f"{what}: checkpoint {weights} does not exist")
    return weights


def load_model(cfg, weights: Optional[str] = None):
    """Builds the model of ``cfg`` in eval mode and loads ``weights`` (default MODEL.WEIGHTS).

    Raises :class:`FileNotFoundError` when there is no checkpoint to load.
    """
    weights = check_weights(weights or cfg.MODEL.WEIGHTS, "weights")
    model = build_model(cfg)
    DetectionCheckpointer(model).load(weights)
    return model.eval()


def model_label(cfg) -> str:
    """A panel label from the config: cluster update and ICM weight / normaliser."""
    m = cfg.MODEL.ICM_DEPTH
    update = "independent clusters" if m.CLUSTER_UPDATE == "independent" else "sequential"
    if m.LOSS.ICM_WEIGHT > 0:
        return f"{update} + ICM {m.LOSS.ICM_WEIGHT:g}"
    return f"{update}, no ICM"


def with_colorbar(rgb: np.ndarray, vmin: float, vmax: float, unit: str, colormap) -> np.ndarray:
    """Appends a vertical colour bar (vmax on top) with three tick labels to an RGB panel."""
    h = rgb.shape[0]
    ramp = np.linspace(vmax, vmin, h)[:, None].repeat(max(6, h // 24), axis=1)
    bar = colorize(ramp, vmin, vmax, colormap)
    labels = np.full((h, 48, 3), 255, np.uint8)
    scale = max(0.3, h / 400)
    for frac, value in ((0.0, vmax), (0.5, 0.5 * (vmin + vmax)), (1.0, vmin)):
        # Baselines kept a text height away from the top so the top label is not cut.
        y = int(np.clip(frac * (h - 1), 24 * scale + 1, h - 3))
        text = f"{value:.3g}{unit}"
        cv2.putText(labels, text, (2, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1)
    return np.concatenate([rgb, bar, labels], axis=1)


def depth_panel(depth: np.ndarray, hi: float, invalid=None) -> np.ndarray:
    """Depth in [0, hi] m (magma), invalid pixels black, with its colour bar."""
    return with_colorbar(colorize(depth, 0, hi, invalid=invalid), 0, hi, "m", cv2.COLORMAP_MAGMA)


def error_panel(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """|pred - gt| / gt on valid GT pixels in [0, MAX_ABS_REL] (jet), others black."""
    valid = gt > 0
    err = np.where(valid, np.abs(pred - gt) / np.where(valid, gt, 1.0), 0.0)
    rgb = colorize(err, 0, MAX_ABS_REL, cv2.COLORMAP_JET, invalid=~valid)
    return with_colorbar(rgb, 0, MAX_ABS_REL, "", cv2.COLORMAP_JET)


def sample_panels(
    cfg, sample: dict, outputs: Sequence[Tuple[str, dict]], max_depth: float = 80.0
) -> List[Tuple[str, np.ndarray]]:
    """Titled images of one mapped sample and the outputs of one or more models.

    Args:
        sample: mapper output (``image`` (3, H, W), ``depth`` (H, W)).
        outputs: (label, model output) pairs; each adds its depth (colour bar in metres), its
            abs_rel error map against the GT and its F3 cluster map (argmax of A1).
    """
    image = sample["image"].permute(1, 2, 0).numpy()
    if cfg.INPUT.FORMAT == "BGR":
        image = image[:, :, ::-1]
    gt = sample["depth"].numpy()
    hi = min(max_depth, float(gt.max()) if (gt > 0).any() else max_depth)
    panels = [("image", image), ("GT depth", depth_panel(gt, hi, invalid=gt <= 0))]
    colors = label_colors(256, seed=5)
    for label, out in outputs:
        pred = out["depth"].float().cpu().numpy()
        clusters = out["cluster_maps"][-1].cpu().numpy()
        panels.append((f"{label}: depth", depth_panel(pred, hi)))
        panels.append((f"{label}: abs rel error", error_panel(pred, gt)))
        panels.append((f"{label}: argmax A1 (F3)", colors[(clusters + 1) % 256]))
    return panels


def hungarian_matches(model, sample: dict, fuzziness: Optional[float] = None) -> List[Dict]:
    """The ICM loss's matching of clusters to instances on one sample, at every resolution.

    Runs the model (eval mode) and rebuilds G exactly as the loss does from the sample's GT
    depth and instance ids (padded like the input).

    Returns:
        per resolution l: ``{"level": l, "size": (h, w), "pairs": [(cluster, instance id,
        cost), ...] sorted by instance, "attn": (N, h, w) A1, "memberships": (M, h, w) G}``.
    """
    seen = {}
    hooks = [
        model.backbone.register_forward_hook(lambda m, i, o: seen.update(padded=i[0].shape[-2:])),
        model.decoder.register_forward_hook(
            lambda m, i, o: seen.update(sizes=[tuple(f.shape[-2:]) for f in i[0]], attns=o[1])
        ),
    ]
    try:
        with torch.no_grad():
            model([sample])
    finally:
        for h in hooks:
            h.remove()
    height, width = seen["padded"]
    depth = torch.zeros(1, height, width)
    ids = torch.zeros(1, height, width, dtype=torch.long)
    h0, w0 = sample["depth"].shape
    depth[0, :h0, :w0] = sample["depth"].float()
    ids[0, :h0, :w0] = sample["instance_ids"].long()
    depth, ids = depth.flatten(1), ids.flatten(1)
    m = int(ids.max())
    levels = []
    if m == 0:
        return levels
    medians, present = instance_median_depth(depth, ids, m)
    g = fcm_memberships(depth, ids, medians, present, fuzziness or model.fuzziness)
    for lvl, (attn, size) in enumerate(zip(seen["attns"], seen["sizes"]), start=1):
        attn = attn[:1].float().cpu()
        pooled, valid = pool_memberships(g, ids, depth > 0, (height, width), size, m)
        cost = icm_cost(attn, pooled, valid)
        rows, cols = hungarian_match(cost, present)[0]
        pairs = sorted(
            (int(c) + 1, int(r), float(cost[0, r, c])) for r, c in zip(rows.tolist(), cols.tolist())
        )
        levels.append(
            {
                "level": lvl,
                "size": size,
                "pairs": [(r, inst, value) for inst, r, value in pairs],
                "attn": attn[0].view(-1, *size).numpy(),
                "memberships": pooled[0].view(m, *size).numpy(),
            }
        )
    return levels


def match_panels(levels: Sequence[Dict], max_pairs: int = 4) -> List[Tuple[str, np.ndarray]]:
    """A1 of each matched cluster beside G of its instance (each scaled to its own maximum)."""
    panels = []
    for level in levels:
        for cluster, instance, cost in level["pairs"][:max_pairs]:
            a = level["attn"][cluster]
            g = level["memberships"][instance - 1]
            panels.append(
                (
                    f"F{level['level']} A1 cluster {cluster}",
                    colorize(a, 0, max(float(a.max()), 1e-6), cv2.COLORMAP_VIRIDIS),
                )
            )
            panels.append(
                (
                    f"G instance {instance} (cost {cost:.3g})",
                    colorize(g, 0, max(float(g.max()), 1e-6), cv2.COLORMAP_VIRIDIS),
                )
            )
    return panels


def visualize_dataset(
    cfg,
    models: Sequence[Tuple[str, torch.nn.Module]],
    dataset_name: str,
    output_dir: str,
    num: int = 4,
    matches: bool = False,
    max_pairs: int = 4,
) -> List[str]:
    """Writes one PNG per sample of ``dataset_name`` with every model's depth, error and
    clusters; with ``matches``, also ``icm_depth_matches_<i>_<label>.png`` per model."""
    mapper = ICMDepthDatasetMapper(cfg, False)
    paths = []
    for i, record in enumerate(itertools.islice(DatasetCatalog.get(dataset_name), num)):
        sample = mapper(record)
        with torch.no_grad():
            outs = [(label, model([sample])[0]) for label, model in models]
        grid = panel_grid(sample_panels(cfg, sample, outs), columns=2 + 3 * len(models), height=160)
        paths.append(save_rgb(os.path.join(output_dir, f"icm_depth_{i:02d}.png"), grid))
        if not matches:
            continue
        for k, (_, model) in enumerate(models):
            levels = hungarian_matches(model, sample)
            panels = match_panels(levels, max_pairs)
            if not panels:
                continue
            columns = 2 * max(len(level["pairs"][:max_pairs]) for level in levels)
            grid = panel_grid(panels, columns=columns, height=120)
            name = f"icm_depth_matches_{i:02d}_{k}.png"
            paths.append(save_rgb(os.path.join(output_dir, name), grid))
    return paths
