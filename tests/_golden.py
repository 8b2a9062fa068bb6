"""Shared pieces of the golden-loss tests.

Weights and inputs come from an integer hash (splitmix64) instead of a random generator, so the
stored loss values do not depend on torch's or numpy's RNG. ``RCNNProbe`` records what a
GeneralizedRCNN-style model computes in one training forward and ``rcnn_reference_losses``
recomputes detectron2's RPN and RoI losses from those records with independent code (its own
IoU, matching, box encoding, cross-entropy and mask targets).
"""

import math
import zlib
from typing import Dict, List, Sequence

import numpy as np
import torch
import torchvision
from torch import nn

_SPLITMIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def hash_uniform(count: int, seed: int) -> np.ndarray:
    """(count,) float64 in [0, 1): splitmix64 of ``seed * 2**32 + index`` (exact integer maths)."""
    a, b, c = (np.uint64(v) for v in _SPLITMIX)
    with np.errstate(over="ignore"):
        z = np.arange(count, dtype=np.uint64) + np.uint64((seed % 2**32) << 32) + a
        z = (z ^ (z >> np.uint64(30))) * b
        z = (z ^ (z >> np.uint64(27))) * c
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def hash_tensor(shape: Sequence[int], seed: int, low: float = 0.0, high: float = 1.0):
    """A float32 tensor of ``shape`` with hash values uniform in [low, high)."""
    count = int(np.prod(shape)) if len(shape) else 1
    values = low + (high - low) * hash_uniform(count, seed)
    return torch.from_numpy(values.astype(np.float32)).reshape(tuple(shape))


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)) or (
        "Norm" in type(module).__name__
    )


@torch.no_grad()
def formula_init_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Sets every parameter from the hash of its name: He-uniform weights (bound sqrt(6 / fan_in)
    with fan_in = numel / rows), norm scales in [0.9, 1.1], everything else in [-0.1, 0.1]."""
    modules = dict(model.named_modules())
    for name, p in model.named_parameters():
        key = zlib.crc32(name.encode()) + 7919 * seed
        owner = modules.get(name.rpartition(".")[0])
        if owner is not None and _is_norm(owner):
            if name.endswith("weight"):
                p.copy_(hash_tensor(p.shape, key, 0.9, 1.1))
            else:
                p.copy_(hash_tensor(p.shape, key, -0.1, 0.1))
        elif p.dim() >= 2:
            bound = math.sqrt(6.0 / max(1, p[0].numel()))
            p.copy_(hash_tensor(p.shape, key, -bound, bound))
        else:
            p.copy_(hash_tensor(p.shape, key, -0.1, 0.1))
    return model


def one_training_step(step) -> Dict[str, float]:
    """Runs ``step.run_step()`` (a detectron2 ``SimpleTrainer``-like object built on
    ``data_loader=[batch]``) under an ``EventStorage``.

    Returns every logged ``loss_*`` scalar and ``total_loss`` (detectron2 logs the terms only
    when there are several, the total always).
    """
    from detectron2.utils.events import EventStorage

    step.iter = 0
    with EventStorage(0) as storage:
        step.run_step()
    return {
        k: v.latest()
        for k, v in storage.histories().items()
        if k.startswith("loss_") or k == "total_loss"
    }


def assert_rel(actual: Dict[str, float], expected: Dict[str, float], rel: float, what: str):
    """Same keys, and every value within ``rel`` relative tolerance (absolute 1e-7 near 0)."""
    assert set(actual) == set(expected), f"{what}: keys {sorted(actual)} vs {sorted(expected)}"
    bad = {
        k: (actual[k], expected[k])
        for k in expected
        if not math.isclose(actual[k], expected[k], rel_tol=rel, abs_tol=1e-7)
    }
    assert not bad, f"{what}: (actual, expected) differ beyond rel {rel}: {bad}"


# ----------------------------------------------------------------------------------------------
# Mask R-CNN: records and independent references.


class RCNNProbe:
    """Records the RPN head outputs, anchors, proposals, sampled RoIs, box predictions and mask
    logits of one training forward of a GeneralizedRCNN (or a subclass with the same parts)."""

    def __init__(self, model: nn.Module):
        self.records: Dict[str, object] = {}
        rpn, roi = model.proposal_generator, model.roi_heads
        self._handles = [
            rpn.anchor_generator.register_forward_hook(self._keep("anchors")),
            rpn.rpn_head.register_forward_hook(self._keep("rpn_head")),
            rpn.register_forward_hook(lambda m, i, o: self.records.__setitem__("proposals", o[0])),
            roi.box_predictor.register_forward_hook(self._keep("box_predictions")),
            roi.mask_head.register_forward_pre_hook(
                lambda m, args: self.records.__setitem__("mask_instances", args[1])
            ),
        ]
        sample, layers = roi.label_and_sample_proposals, roi.mask_head.layers

        def sample_and_keep(*args, **kwargs):
            self.records["sampled"] = sample(*args, **kwargs)
            return self.records["sampled"]

        def layers_and_keep(x):
            self.records["mask_logits"] = layers(x)
            return self.records["mask_logits"]

        roi.label_and_sample_proposals = sample_and_keep
        roi.mask_head.layers = layers_and_keep

    def _keep(self, key):
        return lambda module, inputs, output: self.records.__setitem__(key, output)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(G, 4), (R, 4) XYXY -> (G, R) intersection over union (0 for empty unions)."""
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union, torch.zeros_like(union))


def match(iou: torch.Tensor, thresholds, labels, allow_low_quality: bool):
    """Faster R-CNN matching: (G, R) IoU -> (R,) index of the best GT and (R,) label."""
    best, idx = iou.max(dim=0)
    out = torch.full_like(idx, -2)
    edges = [-math.inf] + list(thresholds) + [math.inf]
    for label, lo, hi in zip(labels, edges[:-1], edges[1:]):
        out[(best >= lo) & (best < hi)] = label
    if allow_low_quality:
        for g in range(iou.shape[0]):
            out[iou[g] == iou[g].max()] = 1
    assert (out != -2).all()
    return idx, out


def encode(src: torch.Tensor, dst: torch.Tensor, weights) -> torch.Tensor:
    """Box deltas (dx, dy, dw, dh) of the R-CNN parameterisation, src -> dst, (R, 4)."""
    wx, wy, ww, wh = weights
    sw, sh = src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]
    dw, dh = dst[:, 2] - dst[:, 0], dst[:, 3] - dst[:, 1]
    sx, sy = src[:, 0] + 0.5 * sw, src[:, 1] + 0.5 * sh
    tx, ty = dst[:, 0] + 0.5 * dw, dst[:, 1] + 0.5 * dh
    return torch.stack(
        [
            wx * (tx - sx) / sw,
            wy * (ty - sy) / sh,
            ww * torch.log(dw / sw),
            wh * torch.log(dh / sh),
        ],
        dim=1,
    )


def smooth_l1(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Elementwise smooth L1 of a difference (plain |x| for beta = 0)."""
    if beta < 1e-5:
        return x.abs()
    return torch.where(x.abs() < beta, 0.5 * x**2 / beta, x.abs() - 0.5 * beta)


def bce_with_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Elementwise -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], stable form."""
    return logits.clamp(min=0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))


def rcnn_reference_losses(cfg, records, gts: List[Dict[str, torch.Tensor]]) -> Dict[str, float]:
    """detectron2's five Mask R-CNN losses recomputed in float64 from ``RCNNProbe`` records.

    ``gts`` holds per image the "boxes" (G, 4), "classes" (G,) and "masks" (G, H, W) bool of the
    ground truth. Sampling must keep every anchor and every RoI (batch sizes larger than the
    candidates): the test asserts it, so the result does not depend on random subsampling.
    """
    d = torch.float64
    num_images = len(gts)
    rpn = cfg.MODEL.RPN
    anchors = torch.cat([b.tensor for b in records["anchors"]]).to(d)
    logits, deltas = records["rpn_head"]
    logits = torch.cat([x.permute(0, 2, 3, 1).flatten(1) for x in logits], 1).detach().to(d)
    deltas = (
        torch.cat(
            [
                x.view(x.shape[0], -1, 4, x.shape[-2], x.shape[-1])
                .permute(0, 3, 4, 1, 2)
                .flatten(1, -2)
                for x in deltas
            ],
            1,
        )
        .detach()
        .to(d)
    )
    assert rpn.BOUNDARY_THRESH < 0, "reference assumes no anchor is dropped at the border"
    cls_sum = loc_sum = 0.0
    for i, gt in enumerate(gts):
        iou = box_iou(gt["boxes"].to(d), anchors)
        idx, labels = match(iou, rpn.IOU_THRESHOLDS, rpn.IOU_LABELS, allow_low_quality=True)
        pos, valid = labels == 1, labels >= 0
        assert int(pos.sum()) <= rpn.BATCH_SIZE_PER_IMAGE * rpn.POSITIVE_FRACTION
        assert int(valid.sum()) <= rpn.BATCH_SIZE_PER_IMAGE, "RPN sampling would drop anchors"
        assert int(pos.sum()) > 0
        cls_sum += bce_with_logits(logits[i][valid], labels[valid].to(d)).sum()
        target = encode(anchors[pos], gt["boxes"].to(d)[idx[pos]], rpn.BBOX_REG_WEIGHTS)
        loc_sum += smooth_l1(deltas[i][pos] - target, rpn.SMOOTH_L1_BETA).sum()
    normalizer = rpn.BATCH_SIZE_PER_IMAGE * num_images
    out = {
        "loss_rpn_cls": float(cls_sum / normalizer * rpn.LOSS_WEIGHT),
        "loss_rpn_loc": float(loc_sum / normalizer * rpn.LOSS_WEIGHT * rpn.BBOX_REG_LOSS_WEIGHT),
    }

    roi, box_head = cfg.MODEL.ROI_HEADS, cfg.MODEL.ROI_BOX_HEAD
    assert not box_head.USE_SIGMOID_CE and not box_head.USE_FED_LOSS
    assert list(roi.IOU_LABELS) == [0, 1], "reference assumes no ignored RoIs"
    num_classes = roi.NUM_CLASSES
    boxes, classes, matched = [], [], []
    for i, gt in enumerate(gts):
        sampled = records["sampled"][i].proposal_boxes.tensor.to(d)
        expected = len(records["proposals"][i]) + (
            len(gt["boxes"]) if roi.PROPOSAL_APPEND_GT else 0
        )
        assert len(sampled) == expected, "RoI sampling dropped proposals: raise BATCH_SIZE"
        iou = box_iou(gt["boxes"].to(d), sampled)
        idx, labels = match(iou, roi.IOU_THRESHOLDS, roi.IOU_LABELS, allow_low_quality=False)
        assert int((labels == 1).sum()) <= roi.BATCH_SIZE_PER_IMAGE * roi.POSITIVE_FRACTION
        boxes.append(sampled)
        classes.append(torch.where(labels == 1, gt["classes"][idx], num_classes))
        matched.append(gt["boxes"].to(d)[idx])
    boxes, classes, matched = torch.cat(boxes), torch.cat(classes), torch.cat(matched)
    scores, box_deltas = (x.detach().to(d) for x in records["box_predictions"])
    out["loss_cls"] = float(-scores.log_softmax(1)[torch.arange(len(classes)), classes].mean())
    fg = classes < num_classes
    per_class = box_deltas.view(len(classes), -1, 4)
    picked = per_class[fg, 0] if per_class.shape[1] == 1 else per_class[fg, classes[fg]]
    target = encode(boxes[fg], matched[fg], box_head.BBOX_REG_WEIGHTS)
    box_sum = smooth_l1(picked - target, box_head.SMOOTH_L1_BETA).sum()
    out["loss_box_reg"] = float(box_sum / len(classes) * box_head.BBOX_REG_LOSS_WEIGHT)

    mask_logits = records["mask_logits"].detach().to(d)
    side = mask_logits.shape[-1]
    picked, targets = [], []
    row = 0
    for i, inst in enumerate(records["mask_instances"]):
        gt = gts[i]
        fg_boxes = inst.proposal_boxes.tensor.to(d)
        iou = box_iou(gt["boxes"].to(d), fg_boxes)
        best, idx = iou.max(dim=0)
        assert (best >= roi.IOU_THRESHOLDS[0]).all(), "mask head got a background RoI"
        for j in range(len(fg_boxes)):
            g = int(idx[j])
            channel = 0 if mask_logits.shape[1] == 1 else int(gt["classes"][g])
            picked.append(mask_logits[row + j, channel])
            crop = torchvision.ops.roi_align(
                gt["masks"][g][None, None].float(),
                [fg_boxes[j : j + 1].float()],
                output_size=side,
                spatial_scale=1.0,
                sampling_ratio=0,
                aligned=True,
            )[0, 0]
            targets.append((crop >= 0.5).to(d))
        row += len(fg_boxes)
    assert row == len(mask_logits) == int(fg.sum())
    out["loss_mask"] = float(bce_with_logits(torch.stack(picked), torch.stack(targets)).mean())
    return out


def gt_instances(image_size, boxes, classes, masks):
    """detectron2 ``Instances`` with gt_boxes, gt_classes and BitMasks gt_masks."""
    from detectron2.structures import BitMasks, Boxes, Instances

    inst = Instances(image_size)
    inst.gt_boxes = Boxes(boxes.float())
    inst.gt_classes = classes.long()
    inst.gt_masks = BitMasks(masks)
    return inst


def ellipse_masks(size, boxes: torch.Tensor) -> torch.Tensor:
    """(G, H, W) bool ellipses inscribed in the given XYXY boxes."""
    h, w = size
    ys = torch.arange(h, dtype=torch.float64)[:, None] + 0.5
    xs = torch.arange(w, dtype=torch.float64)[None, :] + 0.5
    out = []
    for x1, y1, x2, y2 in boxes.tolist():
        cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
        out.append(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0)
    return torch.stack(out)


def scene_image(size, boxes: torch.Tensor, seed: int) -> torch.Tensor:
    """(3, H, W) uint8: hash noise in [40, 120) with brighter objects over ``boxes``."""
    h, w = size
    image = hash_tensor((3, h, w), seed, 40.0, 120.0)
    masks = ellipse_masks(size, boxes)
    for k, m in enumerate(masks):
        image[:, m] += torch.tensor([90.0, 60.0 + 30 * k, 120.0 - 30 * k])[:, None]
    return image.clamp(0, 255).to(torch.uint8)


__all__ = [
    "RCNNProbe",
    "assert_rel",
    "bce_with_logits",
    "box_iou",
    "ellipse_masks",
    "encode",
    "formula_init_",
    "gt_instances",
    "hash_tensor",
    "hash_uniform",
    "match",
    "one_training_step",
    "rcnn_reference_losses",
    "scene_image",
    "smooth_l1",
]
