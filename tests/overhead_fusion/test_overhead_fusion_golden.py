"""Golden loss of the OverheadFusion demo model (quality U-Net, fusion, segmentation U-Net).

One training step on a fixed batch of two samples with 3 and 2 views of different sizes and
hash-defined weights. The fused image is recomputed here from the views and the quality logits
(Eqs. 1-2), and the loss as Eq. 3 (class-weighted cross-entropy over the labelled pixels of the
batch, the ignore label excluded) from the segmentation logits; both, and a stored value, must
match the step. Samples of different sizes go through the networks separately (no padding).
"""

import torch
from detectron2.engine import SimpleTrainer
from detectron2.modeling import build_model

from d2common.testing import plugin_cfg
from overhead_fusion.engine import OverheadFusionTrainer

from .._golden import assert_rel, formula_init_, hash_tensor, hash_uniform, one_training_step

OPTS = ["MODEL.DEVICE", "cpu"]

# Written from a run of this test on torch 2.3.1 (CPU), checked on torch 2.14.1. An intended
# change of the model moves them: with the formula checks still passing, copy the values that
# the failure message prints.
GOLDEN = {"loss_sem_seg": 1.7856643}

# (views, height, width) per sample; each size is its own pass through the networks.
SAMPLES = [(3, 32, 40), (2, 24, 32)]


def _sample(k, num_views, h, w, ignore):
    views = hash_tensor((num_views, 3, h, w), 300 + k)
    labels = torch.from_numpy(hash_uniform(h * w, 310 + k) * 3).long().view(h, w)
    labels[: h // 4, : w // 3] = ignore  # an unlabelled corner
    return {"views": views, "sem_seg": labels}


def _step():
    torch.manual_seed(0)
    cfg = plugin_cfg("configs/OverheadFusion/demo.yaml", OPTS)
    ignore = cfg.MODEL.OVERHEAD_FUSION.IGNORE_VALUE
    model = formula_init_(build_model(cfg))
    model.train()
    optimizer = OverheadFusionTrainer.build_optimizer(cfg, model)
    batch = [_sample(k, *s, ignore) for k, s in enumerate(SAMPLES)]
    seen = {"quality": [], "fused": [], "logits": []}
    model.quality_net.register_forward_hook(lambda m, i, o: seen["quality"].append(o.detach()))

    def seg_hook(module, inputs, output):
        seen["fused"].append(inputs[0].detach())
        seen["logits"].append(output.detach())

    model.seg_net.register_forward_hook(seg_hook)
    model.register_forward_hook(
        lambda m, i, o: seen.update(returned={k: float(v) for k, v in o.items()})
    )
    logged = one_training_step(SimpleTrainer(model, [batch], optimizer))
    # detectron2 logs a single loss term only as total_loss.
    assert set(logged) == {"total_loss"} and set(seen["returned"]) == {"loss_sem_seg"}
    assert_rel(seen["returned"], {"loss_sem_seg": logged["total_loss"]}, 1e-7, "logged")
    return cfg, batch, seen.pop("returned"), seen


def test_overhead_fusion_one_step_loss_matches_eq3_and_golden_value():
    cfg, batch, losses, seen = _step()
    c = cfg.MODEL.OVERHEAD_FUSION
    assert set(losses) == {"loss_sem_seg"}
    d = torch.float64
    # The two sizes differ: one pass per sample, in batch order.
    assert len(seen["quality"]) == len(seen["logits"]) == len(batch)
    alpha = torch.tensor(c.CLASS_WEIGHTS, dtype=d)
    weighted_nll, num_labelled, classes = 0.0, 0, set()
    for k, x in enumerate(batch):
        quality = seen["quality"][k].to(d)
        assert len(quality) == len(x["views"]), "one quality map per view"
        weights = quality.softmax(dim=0)  # Eq. 1: over this sample's views
        fused = (weights * x["views"].to(d)).sum(dim=0)  # Eq. 2
        torch.testing.assert_close(seen["fused"][k][0].to(d), fused, rtol=1e-5, atol=1e-6)
        labelled = x["sem_seg"] != c.IGNORE_VALUE
        y = x["sem_seg"][labelled]
        log_p = seen["logits"][k][0].to(d).log_softmax(dim=0)
        picked = log_p.permute(1, 2, 0)[labelled, y]
        weighted_nll = weighted_nll - (alpha[y] * picked).sum()
        num_labelled += int(labelled.sum())
        classes |= set(y.tolist())
    eq3 = weighted_nll / num_labelled
    assert list(c.CLASS_WEIGHTS) == [0.5, 1.0, 2.0] and classes == {0, 1, 2}
    assert_rel(losses, {"loss_sem_seg": float(eq3)}, 2e-5, "Eq. 3")
    assert_rel(losses, GOLDEN, 1e-4, "stored values")
