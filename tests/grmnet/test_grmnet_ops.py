"""GRM features: batched op vs per-RoI reference, hand-computed cases, import without detectron2."""

import subprocess
import sys
import textwrap

import pytest
import torch

from d2common.testing import cuda_devices
from grmnet.ops import (
    absolute_position,
    grm_feature_dim,
    grm_features,
    grm_features_reference,
    pad_reference_pool,
    relative_position,
    select_references,
)


def random_boxes(n, size=200.0, generator=None):
    xy = torch.rand(n, 2, generator=generator) * size * 0.8
    wh = torch.rand(n, 2, generator=generator) * size * 0.3 + 2.0
    return torch.cat([xy, xy + wh], dim=1)


def make_batch(num_images=3, pool_sizes=(12, 0, 7), num_cand=(9, 4, 15), seed=0):
    g = torch.Generator().manual_seed(seed)
    proposals = [random_boxes(n, generator=g) for n in pool_sizes[:num_images]]
    scores = [torch.randn(n, generator=g) for n in pool_sizes[:num_images]]
    cands, image = [], []
    for b, n in enumerate(num_cand[:num_images]):
        # half of the candidates are proposals themselves (excluded from their own references)
        own = proposals[b][: min(n // 2, len(proposals[b]))]
        cands += [own, random_boxes(n - len(own), generator=g)]
        image += [b] * n
    image_hw = torch.tensor([[240.0, 320.0], [200.0, 200.0], [256.0, 180.0]])[:num_images]
    return torch.cat(cands), torch.tensor(image), proposals, scores, image_hw


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("relative", ["corner", "center", "center3"])
@pytest.mark.parametrize("manner", ["consistency", "distance"])
@pytest.mark.parametrize("top_k,use_absolute", [(10, True), (5, False), (0, True), (20, True)])
def test_batched_matches_per_roi_reference(device, relative, manner, top_k, use_absolute):
    cands, image, proposals, scores, image_hw = make_batch()
    expected = grm_features_reference(
        cands, image, proposals, scores, image_hw, top_k, relative, manner, use_absolute
    )
    pool = pad_reference_pool([p.to(device) for p in proposals], [s.to(device) for s in scores])
    got = grm_features(
        cands.to(device),
        image.to(device),
        *pool,
        image_hw.to(device),
        top_k=top_k,
        relative=relative,
        manner=manner,
        use_absolute=use_absolute,
    )
    assert got.shape == (len(cands), grm_feature_dim(top_k, relative, use_absolute))
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-5, atol=1e-5)


def test_hand_computed_corner_offsets_and_exclusion():
    cand = torch.tensor([[10.0, 20.0, 30.0, 60.0]])  # w = 20, h = 40
    pool_boxes = torch.tensor(
        [[[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 10.0, 10.0], [50, 20, 70, 40]]]
    )
    pool_scores = torch.tensor([[5.0, 1.0, 2.0]])  # the candidate itself ranks first
    valid = torch.ones(1, 3, dtype=torch.bool)
    refs, ok = select_references(cand, torch.tensor([0]), pool_boxes, pool_scores, valid, 3)
    assert ok.tolist() == [[True, True, False]]
    assert refs[0, 0].tolist() == [50, 20, 70, 40] and refs[0, 1].tolist() == [0, 0, 10, 10]
    delta = relative_position(cand, refs, ok, "corner")
    torch.testing.assert_close(delta[0, 0], torch.tensor([2.0, 0.0, 2.0, -0.5, 0.5]))
    torch.testing.assert_close(delta[0, 1], torch.tensor([-0.5, -0.5, -1.0, -1.25, 0.125]))
    assert delta[0, 2].abs().sum() == 0  # zero padding
    centre = relative_position(cand, refs, ok, "center")  # authors' code: from (20, 40)
    torch.testing.assert_close(centre[0, 0], torch.tensor([1.5, -0.5, 2.5, 0.0, 0.5]))
    centre3 = relative_position(cand, refs, ok, "center3")
    torch.testing.assert_close(centre3[0, 0], torch.tensor([2.0, -0.25, 0.5]))
    absolute = absolute_position(cand, torch.tensor([[100.0, 50.0]]))
    torch.testing.assert_close(absolute[0], torch.tensor([0.2, 0.2, 0.6, 0.6, 0.16]))


def test_consistency_ties_keep_proposal_order_and_distance_picks_nearest():
    cand = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    pool = torch.tensor([[[100.0, 0, 110, 10], [20, 0, 30, 10], [40, 0, 50, 10]]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    refs, _ = select_references(cand, torch.tensor([0]), pool, torch.zeros(1, 3), valid, 2)
    assert refs[0, :, 0].tolist() == [100.0, 20.0]
    refs, _ = select_references(
        cand, torch.tensor([0]), pool, torch.zeros(1, 3), valid, 2, manner="distance"
    )
    assert refs[0, :, 0].tolist() == [20.0, 40.0]


def test_empty_inputs():
    pool = pad_reference_pool([torch.zeros(0, 4)], [torch.zeros(0)])
    out = grm_features(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), *pool, torch.ones(1, 2))
    assert out.shape == (0, 55)
    with pytest.raises(ValueError, match="relative"):
        grm_feature_dim(10, "diagonal")


def test_ops_import_without_detectron2():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["detectron2"] = None
        import torch
        from grmnet.ops import grm_features, pad_reference_pool
        pool = pad_reference_pool([torch.tensor([[0., 0., 5., 5.], [1., 1., 9., 9.]])],
                                  [torch.tensor([0.3, 0.9])])
        out = grm_features(torch.tensor([[0., 0., 4., 4.]]), torch.tensor([0]), *pool,
                           torch.tensor([[10., 10.]]), top_k=2)
        assert out.shape == (1, 15), out.shape
        assert "detectron2.config" not in sys.modules
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("device", cuda_devices())
@pytest.mark.parametrize("manner", ["consistency", "distance"])
def test_duplicates_of_the_candidate_are_all_excluded(device, manner):
    box = [10.0, 10.0, 30.0, 30.0]
    proposals = torch.tensor([box, box, [40.0, 10, 60, 30], [0, 50, 20, 70], box, [80, 80, 90, 90]])
    scores = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    cand, image, hw = torch.tensor([box]), torch.tensor([0]), torch.tensor([[100.0, 100.0]])
    expected = grm_features_reference(cand, image, [proposals], [scores], hw, 3, manner=manner)
    pool = pad_reference_pool([proposals.to(device)], [scores.to(device)])
    got = grm_features(cand.to(device), image.to(device), *pool, hw.to(device), 3, manner=manner)
    torch.testing.assert_close(got.cpu(), expected)
    refs, valid = select_references(cand.to(device), image.to(device), *pool, 3, manner)
    assert valid.all() and not (refs.cpu() == torch.tensor(box)).all(-1).any()
