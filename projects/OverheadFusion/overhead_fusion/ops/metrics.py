"""Semantic segmentation scores from one confusion matrix over a whole set (FCN definitions)."""

from typing import Dict

import torch

__all__ = ["confusion_matrix", "segmentation_scores"]


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """Counts n_ij, the pixels of true class i predicted as class j.

    Args:
        pred, target: integer tensors of the same shape; ``target == ignore_index`` is skipped.

    Returns:
        (num_classes, num_classes) int64, rows true class, columns predicted class.
    """
    valid = (target != ignore_index) & (target >= 0) & (target < num_classes)
    index = target[valid].long() * num_classes + pred[valid].long()
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def segmentation_scores(conf: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Long et al.'s metrics from a confusion matrix (rows true, columns predicted).

    pixel accuracy = sum_i n_ii / sum_i t_i; IoU_i = n_ii / (t_i + sum_j n_ji - n_ii);
    mIoU = nanmean_i IoU_i (classes absent from both truth and prediction are NaN);
    fwIoU = sum_i (t_i / sum_k t_k) IoU_i.

    Returns:
        dict with ``pixel_acc``, ``mIoU``, ``fwIoU`` (0-dim float64) and ``IoU`` (C,) float64.
    """
    conf = conf.double()
    tp = torch.diagonal(conf)
    true_total = conf.sum(dim=1)
    union = true_total + conf.sum(dim=0) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
    total = true_total.sum().clamp_min(1)
    return {
        "pixel_acc": tp.sum() / total,
        "IoU": iou,
        "mIoU": torch.nanmean(iou),
        "fwIoU": torch.nansum(true_total / total * iou),
    }
