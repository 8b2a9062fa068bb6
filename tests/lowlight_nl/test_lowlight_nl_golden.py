"""Golden losses of the demo model (Mask R-CNN R18-FPN with weighted NL blocks after res2..res5).

One training step on a fixed two-image batch with hash-defined weights. Every loss is checked
against detectron2's formulas recomputed from the model's own RPN / RoI outputs (independent IoU,
matching, box encoding, cross-entropy, mask targets) and against values stored here. Sampling
batch sizes exceed the candidates, so no random subsampling enters the numbers.
"""

import math

import torch
from detectron2.engine import SimpleTrainer
from detectron2.modeling import build_model

from d2common.registry import TRAINER_REGISTRY
from d2common.testing import plugin_cfg

from .._golden import (
    RCNNProbe,
    assert_rel,
    ellipse_masks,
    formula_init_,
    gt_instances,
    one_training_step,
    rcnn_reference_losses,
    scene_image,
)

OPTS = [
    "MODEL.DEVICE", "cpu",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE", 4096,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 512,
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", 40,
]  # fmt: skip

# Written from a run of this test on torch 2.3.1 (CPU); they must not move on another stack.
# (W_z's 1x1 conv has no bias.)
GOLDEN = {
    "loss_rpn_cls": 0.68595892,
    "loss_rpn_loc": 0.0022512986,
    "loss_cls": 2.7083342,
    "loss_box_reg": 0.54375583,
    "loss_mask": 0.74827874,
}

GT = [
    ((64, 96), [[10.0, 8.0, 42.0, 40.0], [50.0, 20.0, 90.0, 52.0]], [0, 2]),
    ((80, 64), [[6.0, 30.0, 38.0, 74.0], [30.0, 4.0, 60.0, 30.0]], [1, 0]),
]


def _batch():
    batch, gts = [], []
    for k, (size, boxes, classes) in enumerate(GT):
        boxes, classes = torch.tensor(boxes), torch.tensor(classes)
        masks = ellipse_masks(size, boxes)
        batch.append(
            {
                "image": scene_image(size, boxes, seed=100 + k),
                "instances": gt_instances(size, boxes, classes, masks),
            }
        )
        gts.append({"boxes": boxes, "classes": classes, "masks": masks})
    return batch, gts


def _step():
    torch.manual_seed(0)
    cfg = plugin_cfg("configs/LowLightNL/demo.yaml", OPTS)
    model = formula_init_(build_model(cfg))
    blocks = model.backbone.bottom_up.nonlocal_blocks
    assert sorted(blocks) == ["res2", "res3", "res4", "res5"]
    with torch.no_grad():
        for block in blocks.values():
            # Both paths of z = w W_z(y) + (1 - w) x count, with unequal weights.
            block.blend_weight.fill_(0.3)
    model.train()
    optimizer = TRAINER_REGISTRY.get(cfg.TRAINER.NAME).build_optimizer(cfg, model)
    batch, gts = _batch()
    probe = RCNNProbe(model)
    before = {n: p.detach().clone() for n, p in blocks.named_parameters()}
    losses = one_training_step(SimpleTrainer(model, [batch], optimizer))
    moved = [n for n, p in blocks.named_parameters() if not torch.equal(p, before[n])]
    return cfg, losses, probe.records, gts, moved


def test_lowlight_nl_one_step_losses_match_formulas_and_golden_values():
    cfg, losses, records, gts, moved = _step()
    total = losses.pop("total_loss")
    assert math.isclose(total, sum(losses.values()), rel_tol=1e-5)
    expected_keys = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask"}
    assert set(losses) == expected_keys
    assert_rel(losses, rcnn_reference_losses(cfg, records, gts), 2e-5, "closed form")
    assert_rel(losses, GOLDEN, 1e-4, "stored values")
    # The step reached the non-local blocks (w included).
    assert any(n.endswith("blend_weight") for n in moved) and len(moved) > 4
