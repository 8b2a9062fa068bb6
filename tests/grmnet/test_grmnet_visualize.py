"""Fig. 5-style drawings: labels that never overlap, and references of the classified proposal."""

import itertools

import numpy as np
import torch

from d2common.testing import run_train_steps
from grmnet.visualize import draw_references, place_labels

from .test_grmnet_model import tiny_cfg


def _overlap(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_labels_of_crowded_boxes_do_not_overlap():
    # Ten identical boxes (references often coincide), two near the top edge, one tiny.
    boxes = [[100, 100, 180, 160]] * 10 + [[0, 0, 50, 20], [5, 2, 60, 25], [300, 300, 302, 302]]
    sizes = [(52, 16)] * len(boxes)
    placed = place_labels(boxes, sizes, (400, 400))
    rects = [r for r, _ in placed]
    for a, b in itertools.combinations(rects, 2):
        assert not _overlap(a, b), (a, b)
    assert all(0 <= r[0] and 0 <= r[1] and r[2] <= 400 and r[3] <= 400 for r in rects)
    # The first label has its preferred slot (above the box); the crowded ones go to an edge.
    assert rects[0][3] == 100 and rects[0][0] == 100 and not placed[0][1]
    assert any(leader for _, leader in placed[4:10])


def test_reference_drawing_is_upscaled_and_labelled():
    image = np.full((128, 96, 3), 255, np.uint8)
    refs = torch.tensor([[10.0, 10, 40, 40]] * 5)
    out = draw_references(image, torch.tensor([10.0, 10, 40, 40]), refs, torch.rand(5))
    assert out.shape == (512, 384, 3) and (out != 255).any()


def test_detections_know_their_classified_proposal(tmp_path, registered_toy, monkeypatch):
    """With zero box deltas a detection is its proposal: ``proposal_index`` must point at it."""
    from grmnet.predictor import ReferringPredictor, ReferringResult

    cfg = tiny_cfg(
        tmp_path, registered_toy, monkeypatch,
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.ROI_HEADS.NMS_THRESH_TEST", "1.0",
    )  # fmt: skip
    trainer, _ = run_train_steps(cfg, 1)
    predictor = ReferringPredictor(cfg)
    predictor.model.load_state_dict(trainer.model.state_dict())
    bbox_pred = predictor.model.roi_heads.box_predictor.bbox_pred
    torch.nn.init.zeros_(bbox_pred.weight)
    torch.nn.init.zeros_(bbox_pred.bias)
    sketch = registered_toy / "toy" / "grmnet" / "val" / "DRAWING_GT" / "L0_sample10001.png"
    import cv2

    result = predictor(cv2.imread(str(sketch)), "the two cars")
    assert isinstance(result, ReferringResult) and len(result.instances) > 0
    proposals = result.proposals.proposal_boxes.tensor
    index = result.instances.proposal_index
    assert int(index.max()) < len(proposals)
    torch.testing.assert_close(result.instances.pred_boxes.tensor, proposals[index])
    box = predictor.classified_proposal(result, 0)
    refs, _ = predictor.references(result, box)
    assert not (refs == box).all(1).any(), "a proposal is never its own reference"
