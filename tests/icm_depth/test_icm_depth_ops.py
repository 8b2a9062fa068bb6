"""ICMDepth's plain-torch ops against direct per-element implementations of the equations."""

import itertools
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from d2common.testing import cuda_devices
from icm_depth.ops import (
    cluster_update_attention,
    fcm_memberships,
    icm_cost,
    icm_loss,
    icm_loss_reference,
    instance_median_depth,
    instance_pixels,
    pixel_cluster_attention,
    pool_memberships,
    silog_loss,
    sine_position_encoding,
)

DEVICES = cuda_devices()


def naive_icm_loss(attns, level_sizes, depth, ids, m=2.0, eps=1e-6, normalizer="matched"):
    """Eq. (4)-(6) element by element (Python loops over pixels, clusters and instances).

    Frames without an instance holding valid depth are left out of the batch mean.
    """
    batch, height, width = depth.shape
    out = []
    for attn, (h, w) in zip(attns, level_sizes):
        per_image = []
        for b in range(batch):
            labels = sorted(
                {
                    int(ids[b, y, x])
                    for y in range(height)
                    for x in range(width)
                    if ids[b, y, x] > 0 and depth[b, y, x] > 0
                }
            )
            if not labels:
                continue
            centroid = {
                i: float(
                    np.median(
                        [
                            depth[b, y, x]
                            for y in range(height)
                            for x in range(width)
                            if ids[b, y, x] == i and depth[b, y, x] > 0
                        ]
                    )
                )
                for i in labels
            }
            g_cells = {i: [0.0] * (h * w) for i in labels}
            counts = [0] * (h * w)
            for y in range(height):
                for x in range(width):
                    if depth[b, y, x] <= 0:
                        continue
                    cell = (y * h // height) * w + (x * w // width)
                    counts[cell] += 1
                    own = int(ids[b, y, x])
                    if own == 0:
                        continue
                    xj = float(depth[b, y, x])
                    num = max(abs(xj - centroid[own]), eps) ** (-2 / (m - 1))
                    den = sum(max(abs(xj - centroid[k]), eps) ** (-2 / (m - 1)) for k in labels)
                    g_cells[own][cell] += num / den
            valid = [c > 0 for c in counts]
            cost = np.zeros((attn.shape[1], len(labels)))
            a = [
                [attn[b, i, q] if valid[q] else 0.0 for q in range(h * w)]
                for i in range(attn.shape[1])
            ]
            for col, lab in enumerate(labels):
                g = [g_cells[lab][q] / counts[q] if valid[q] else 0.0 for q in range(h * w)]
                g_norm = max(math.sqrt(sum(v * v for v in g)), eps)
                for i in range(attn.shape[1]):
                    a_norm = max(math.sqrt(sum(v * v for v in a[i])), eps)
                    total = 0.0
                    for q in range(h * w):
                        if not valid[q]:
                            continue
                        ah, gh = a[i][q] / a_norm, g[q] / g_norm
                        total += -gh * math.log(min(max(ah, eps), 1 - eps))
                        total += -(1 - gh) * math.log(max(1 - ah, eps))
                    cost[i, col] = total
            r, c = linear_sum_assignment(cost)
            divisor = len(r) if normalizer == "matched" else attn.shape[1]
            per_image.append(float(cost[r, c].sum()) / divisor)
        out.append(float(np.mean(per_image)) if per_image else 0.0)
    return out


def random_scene(seed, batch=2, size=(8, 12), num_instances=3, invalid_frac=0.2):
    g = torch.Generator().manual_seed(seed)
    depth = torch.rand(batch, *size, generator=g) * 30 + 1
    depth[torch.rand(batch, *size, generator=g) < invalid_frac] = 0
    ids = torch.randint(0, num_instances + 1, (batch, *size), generator=g)
    return depth, ids


def random_attn(seed, batch, n, level_sizes):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, n, h * w, generator=g).softmax(1) for h, w in level_sizes]


@pytest.mark.parametrize("stack_levels", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_icm_loss_matches_per_element_equations(device, stack_levels):
    depth, ids = random_scene(0)
    ids[1, :, :6] = 0  # uneven instance sizes
    sizes = [(2, 3), (4, 6), (8, 12)]
    attns = random_attn(1, 2, 5, sizes)
    got = icm_loss(
        [a.to(device) for a in attns],
        sizes,
        depth.to(device),
        ids.to(device),
        stack_levels=stack_levels,
    )
    want = naive_icm_loss(attns, sizes, depth.numpy(), ids.numpy())
    np.testing.assert_allclose([float(v) for v in got], want, rtol=1e-4)
    ref = icm_loss_reference([a.numpy() for a in attns], sizes, depth.numpy(), ids.numpy())
    np.testing.assert_allclose(ref, want, rtol=1e-6)


@pytest.mark.parametrize("normalizer", ["matched", "clusters"])
@pytest.mark.parametrize("device", DEVICES)
def test_stacked_levels_give_the_per_level_values_and_gradients(device, normalizer):
    """One zero-padded batch of all levels == one level at a time: values and gradients, with a
    frame without instances and more instances than clusters."""
    depth, ids = random_scene(21, batch=3, size=(12, 20), num_instances=7)
    ids[1] = 0
    sizes = [(3, 5), (6, 10), (12, 20)]
    outputs = []
    for stack in (False, True):
        attns = [a.to(device).requires_grad_() for a in random_attn(22, 3, 4, sizes)]
        losses = icm_loss(
            attns, sizes, depth.to(device), ids.to(device), normalizer=normalizer,
            stack_levels=stack,
        )  # fmt: skip
        sum(w * v for w, v in zip((1.0, 2.0, 3.0), losses)).backward()
        outputs.append(([float(v) for v in losses], [a.grad.cpu() for a in attns]))
    (values, grads), (stacked_values, stacked_grads) = outputs
    assert all(v > 0 for v in values)
    np.testing.assert_allclose(stacked_values, values, rtol=1e-6)
    for got, want in zip(stacked_grads, grads):
        assert want.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_given_instance_count_changes_nothing():
    """M passed by a caller that holds the ids on the host (or larger: absent instances) gives
    the values M read from the ids gives."""
    depth, ids = random_scene(23, batch=2, num_instances=4)
    sizes = [(2, 3), (4, 6)]
    attns = random_attn(24, 2, 5, sizes)
    want = [float(v) for v in icm_loss(attns, sizes, depth, ids)]
    for m in (int(ids.max()), int(ids.max()) + 3):
        for stack in (False, True):
            got = icm_loss(attns, sizes, depth, ids, num_instances=m, stack_levels=stack)
            np.testing.assert_allclose([float(v) for v in got], want, rtol=1e-6)


def test_icm_loss_more_instances_than_clusters_and_non_divisible_levels():
    depth, ids = random_scene(3, batch=1, size=(7, 10), num_instances=6, invalid_frac=0.1)
    sizes = [(2, 3), (4, 5)]
    attns = random_attn(4, 1, 3, sizes)
    got = icm_loss(attns, sizes, depth, ids)
    want = naive_icm_loss(attns, sizes, depth.numpy(), ids.numpy())
    np.testing.assert_allclose([float(v) for v in got], want, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_icm_loss_without_instances_is_zero_finite_and_differentiable(device):
    depth, _ = random_scene(5)
    attn = random_attn(6, 2, 4, [(4, 6)])[0].to(device).requires_grad_()
    losses = icm_loss(
        [attn], [(4, 6)], depth.to(device), torch.zeros_like(depth, dtype=torch.long).to(device)
    )
    assert float(losses[0]) == 0.0
    losses[0].backward()
    assert torch.isfinite(attn.grad).all()


def test_icm_loss_frame_without_depth_on_its_instance():
    depth, ids = random_scene(7, batch=2)
    depth[1][ids[1] > 0] = 0  # instances exist, but none has valid depth
    sizes = [(4, 6)]
    attns = random_attn(8, 2, 4, sizes)
    got = icm_loss(attns, sizes, depth, ids)
    want = naive_icm_loss(attns, sizes, depth.numpy(), ids.numpy())
    assert math.isfinite(float(got[0]))
    np.testing.assert_allclose(float(got[0]), want[0], rtol=1e-4)


def test_icm_loss_clusters_normalizer_divides_by_n_and_matches_per_element_equations():
    depth, ids = random_scene(11, batch=2, num_instances=3)
    sizes = [(2, 3), (8, 12)]
    attns = random_attn(12, 2, 5, sizes)
    matched = icm_loss(attns, sizes, depth, ids)
    clusters = icm_loss(attns, sizes, depth, ids, normalizer="clusters")
    want = naive_icm_loss(attns, sizes, depth.numpy(), ids.numpy(), normalizer="clusters")
    np.testing.assert_allclose([float(v) for v in clusters], want, rtol=1e-4)
    ref = icm_loss_reference(
        [a.numpy() for a in attns], sizes, depth.numpy(), ids.numpy(), normalizer="clusters"
    )
    np.testing.assert_allclose(ref, want, rtol=1e-6)
    # Both frames hold 3 instances with valid depth: sum / 5 = mean over 3 pairs * 3 / 5.
    np.testing.assert_allclose(
        [float(v) for v in clusters], [0.6 * float(v) for v in matched], rtol=1e-6
    )
    with pytest.raises(ValueError, match="normalizer"):
        icm_loss(attns, sizes, depth, ids, normalizer="n")


def test_icm_targets_receive_no_gradient():
    depth, ids = random_scene(13, batch=2)
    depth.requires_grad_()
    attn = random_attn(14, 2, 4, [(4, 6)])[0].requires_grad_()
    (loss,) = icm_loss([attn], [(4, 6)], depth, ids)
    loss.backward()
    assert depth.grad is None
    assert attn.grad is not None and attn.grad.abs().sum() > 0
    pred = (torch.rand(2, 8, 12) + 1).requires_grad_()
    target = (torch.rand(2, 8, 12) + 1).requires_grad_()
    silog_loss(pred, target, torch.ones(2, 8, 12, dtype=torch.bool)).backward()
    assert target.grad is None and pred.grad.abs().sum() > 0


def test_batch_means_leave_out_frames_that_do_not_contribute():
    """[valid frame, frame without instances, frame without valid depth] == [valid frame]."""
    depth, ids = random_scene(15, batch=3, num_instances=3)
    ids[1] = 0  # no instances (depth valid: counts for SI_log, not for ICM)
    depth[2] = 0  # instances but no valid depth: counts for neither
    sizes = [(4, 6), (8, 12)]
    attns = random_attn(16, 3, 4, sizes)
    for normalizer in ("matched", "clusters"):
        got = icm_loss(attns, sizes, depth, ids, normalizer=normalizer)
        alone = icm_loss([a[:1] for a in attns], sizes, depth[:1], ids[:1], normalizer=normalizer)
        np.testing.assert_allclose([float(v) for v in got], [float(v) for v in alone], rtol=1e-6)
    pred = torch.rand(3, 8, 12, generator=torch.Generator().manual_seed(17)) * 20 + 1
    valid = depth > 0
    got = silog_loss(pred, depth, valid)
    two = silog_loss(pred[:2], depth[:2], valid[:2])
    torch.testing.assert_close(got, two)
    # Nothing contributes: zero, finite, still differentiable.
    empty = icm_loss([a[1:] for a in attns], sizes, depth[1:], ids[1:])
    assert [float(v) for v in empty] == [0.0, 0.0]
    none = silog_loss(pred[2:].requires_grad_(), depth[2:], valid[2:])
    assert float(none) == 0.0


def test_icm_gradient_pulls_matched_cluster_towards_instance():
    depth = torch.full((1, 4, 4), 10.0)
    ids = torch.zeros(1, 4, 4, dtype=torch.long)
    ids[0, :2, :2] = 1
    logits = torch.zeros(1, 3, 16, requires_grad=True)
    (loss,) = icm_loss([logits.softmax(1)], [(4, 4)], depth, ids)
    loss.backward()
    inside = ids.flatten(1)[0] > 0
    matched = int(logits.grad[0][:, inside].sum(1).argmin())
    # Gradient descent raises the matched cluster's logits inside the instance.
    assert (logits.grad[0, matched, inside] < 0).all()


def test_precomputed_instance_pixels_give_the_same_targets():
    depth, ids = random_scene(25, batch=2, num_instances=3)
    depth, ids = depth.flatten(1), ids.flatten(1)
    pixels = instance_pixels(depth, ids)
    inside = (depth > 0) & (ids > 0)
    assert torch.equal(torch.stack(pixels), torch.stack(inside.nonzero(as_tuple=True)))
    medians, present = instance_median_depth(depth, ids, 3)
    given = instance_median_depth(depth, ids, 3, pixels)
    torch.testing.assert_close(given, (medians, present))
    torch.testing.assert_close(
        fcm_memberships(depth, ids, medians, present, pixels=pixels),
        fcm_memberships(depth, ids, medians, present),
    )


def test_instance_median_depth_matches_numpy():
    depth, ids = random_scene(9, batch=3, size=(9, 11), num_instances=4)
    ids[2] = torch.where(ids[2] == 4, 0, ids[2])  # instance 4 absent in the last image
    med, present = instance_median_depth(depth.flatten(1), ids.flatten(1), 4)
    for b, i in itertools.product(range(3), range(1, 5)):
        values = depth[b][(ids[b] == i) & (depth[b] > 0)].numpy()
        assert bool(present[b, i - 1]) == (values.size > 0)
        if values.size:
            assert float(med[b, i - 1]) == pytest.approx(float(np.median(values)), rel=1e-6)


def test_fcm_memberships_hand_computed_and_guarded():
    # Two instances with centroids 10 and 20 (single pixels), and pixels at 12 and 20 in inst 1.
    depth = torch.tensor([[10.0, 12.0, 20.0, 20.0, 5.0]])
    ids = torch.tensor([[1, 1, 1, 2, 0]])
    medians = torch.tensor([[12.0, 20.0]])
    present = torch.tensor([[True, True]])
    g = fcm_memberships(depth, ids, medians, present, fuzziness=2.0)
    # pixel 10 in inst 1: |10-12|^-2 / (|10-12|^-2 + |10-20|^-2) = (1/4) / (1/4 + 1/100)
    assert float(g[0, 0]) == pytest.approx(0.25 / 0.26, rel=1e-5)
    assert float(g[0, 1]) == pytest.approx(1.0, abs=1e-6)  # x_j == c_i
    assert float(g[0, 2]) == pytest.approx(0.0, abs=1e-6)  # x_j == c_k of another instance
    assert float(g[0, 3]) == pytest.approx(1.0, abs=1e-6)
    assert float(g[0, 4]) == 0.0  # outside every instance
    m3 = fcm_memberships(depth, ids, medians, present, fuzziness=3.0)
    assert float(m3[0, 0]) == pytest.approx(0.5 / (0.5 + 0.1), rel=1e-5)
    with pytest.raises(ValueError, match="fuzziness"):
        fcm_memberships(depth, ids, medians, present, fuzziness=1.0)


def test_pool_memberships_is_mean_over_valid_pixels():
    g = torch.tensor([[0.5, 1.0, 0.2, 0.0, 0.9, 0.0, 0.0, 0.0]])
    ids = torch.tensor([[1, 1, 2, 0, 1, 0, 0, 0]])
    valid = torch.tensor([[True, True, True, True, False, False, False, False]])
    pooled, cells = pool_memberships(g, ids, valid, (2, 4), (1, 2), 2)
    # Cell 0 holds pixels (0,0), (0,1), (1,0), (1,1): valid ones are the first two.
    assert pooled[0, 0].tolist() == pytest.approx([0.75, 0.0])
    assert pooled[0, 1].tolist() == pytest.approx([0.0, 0.1])
    assert cells.tolist() == [[True, True]]


def test_icm_cost_hand_computed():
    attn = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])  # rows already unit norm
    g = torch.tensor([[[1.0, 0.0]]])
    cost = icm_cost(attn, g, torch.tensor([[True, True]]), eps=1e-6)
    eps = 1e-6
    # cluster 0 = (1, 0) vs g = (1, 0): -1 * log(1 - eps) (a is clamped) - 0 - 1 * log(1 - 0)
    want0 = -math.log(1 - eps)
    want1 = -math.log(0.6) - math.log(1 - 0.8)
    assert float(cost[0, 0, 0]) == pytest.approx(want0, abs=1e-5)
    assert float(cost[0, 1, 0]) == pytest.approx(want1, rel=1e-5)


def naive_cluster_update(q, k, v, valid, normalize_rows):
    b, n, d = q.shape
    p = k.shape[1]
    attn = torch.zeros(b, n, p, dtype=torch.float64)
    for bi, j in itertools.product(range(b), range(p)):
        logits = [float(q[bi, i] @ k[bi, j]) / math.sqrt(d) for i in range(n)]
        top = max(logits)
        z = sum(math.exp(x - top) for x in logits)
        for i in range(n):
            attn[bi, i, j] = math.exp(logits[i] - top) / z * float(valid[bi, j])
    weights = attn / (attn.sum(-1, keepdim=True) + 1e-6) if normalize_rows else attn
    return weights @ v.double(), attn


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("normalize_rows", [True, False])
def test_cluster_update_attention_matches_naive(device, normalize_rows):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, s, 6, generator=g) for s in (4, 10, 10))
    valid = torch.rand(2, 10, generator=g) > 0.3
    update, attn = cluster_update_attention(
        q.to(device), k.to(device), v.to(device), valid.to(device), normalize_rows
    )
    want_update, want_attn = naive_cluster_update(q, k, v, valid, normalize_rows)
    torch.testing.assert_close(attn.cpu().double(), want_attn, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(update.cpu().double(), want_update, rtol=1e-4, atol=1e-5)
    # softmax over the N clusters: every valid pixel's column sums to one (eq. 1).
    torch.testing.assert_close(attn.sum(1).cpu(), valid.float())


@pytest.mark.parametrize("device", DEVICES)
def test_pixel_cluster_attention_matches_naive(device):
    g = torch.Generator().manual_seed(1)
    q, k, v = (
        torch.randn(2, 9, 5, generator=g),
        torch.randn(2, 3, 5, generator=g),
        torch.randn(2, 3, 5, generator=g),
    )
    update, attn = pixel_cluster_attention(q.to(device), k.to(device), v.to(device))
    want = torch.zeros(2, 9, 3)
    for b, j in itertools.product(range(2), range(9)):
        want[b, j] = torch.softmax(
            torch.stack([q[b, j] @ k[b, i] for i in range(3)]) / math.sqrt(5), 0
        )
    torch.testing.assert_close(attn.cpu(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(update.cpu(), want @ v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_silog_matches_numpy(device):
    g = torch.Generator().manual_seed(2)
    pred = torch.rand(3, 5, 7, generator=g) * 10 + 0.5
    gt = torch.rand(3, 5, 7, generator=g) * 10 + 0.5
    valid = torch.rand(3, 5, 7, generator=g) > 0.4
    valid[2] = False
    got = silog_loss(pred.to(device), gt.to(device), valid.to(device))
    per = []
    for b in range(3):
        if not valid[b].any():
            continue  # left out of the mean, not counted as 0
        d = np.log(pred[b][valid[b]].double().numpy() + 1e-6) - np.log(
            gt[b][valid[b]].double().numpy() + 1e-6
        )
        per.append(np.sqrt(d.var() + 0.15 * d.mean() ** 2 + 1e-6))
    assert float(got) == pytest.approx(float(np.mean(per)), rel=1e-5)


def test_ops_import_and_run_without_detectron2(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        sys.modules["detectron2"] = None
        import torch
        from icm_depth.ops import icm_loss, cluster_update_attention
        import icm_depth
        assert not hasattr(icm_depth, "add_icm_depth_config")
        depth = torch.rand(1, 4, 4) + 1
        ids = torch.zeros(1, 4, 4, dtype=torch.long); ids[0, :2] = 1
        attn = torch.rand(1, 3, 4).softmax(1)
        print(float(icm_loss([attn], [(2, 2)], depth, ids)[0]) > 0)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("normalize_rows", [True, False])
def test_multi_head_attention_is_per_head_attention_on_channel_slices(normalize_rows):
    g = torch.Generator().manual_seed(3)
    heads, d = 4, 3
    q, k, v = (torch.randn(2, s, heads * d, generator=g) for s in (5, 12, 12))
    valid = torch.rand(2, 12, generator=g) > 0.3
    update, attn = cluster_update_attention(q, k, v, valid, normalize_rows, num_heads=heads)
    parts = [
        naive_cluster_update(
            *(x[..., h * d : (h + 1) * d] for x in (q, k, v)), valid, normalize_rows
        )
        for h in range(heads)
    ]
    torch.testing.assert_close(
        update.double(), torch.cat([u for u, _ in parts], -1), rtol=1e-4, atol=1e-5
    )
    torch.testing.assert_close(
        attn.double(), torch.stack([a for _, a in parts]).mean(0), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(attn.sum(1), valid.float())
    q2, k2, v2 = (torch.randn(2, s, heads * d, generator=g) for s in (7, 5, 5))
    update2, attn2 = pixel_cluster_attention(q2, k2, v2, num_heads=heads)
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        u, a = pixel_cluster_attention(q2[..., sl], k2[..., sl], v2[..., sl])
        torch.testing.assert_close(update2[..., sl], u)
    with pytest.raises(ValueError, match="heads"):
        cluster_update_attention(q, k, v, num_heads=5)


def test_sine_position_encoding_matches_the_formula():
    h, w, dim = 3, 5, 8
    pe = sine_position_encoding(h, w, dim)
    assert pe.shape == (h * w, dim)
    half = dim // 2
    for y, x in itertools.product(range(h), range(w)):
        for axis, (pos, n) in enumerate(((y, h), (x, w))):
            scaled = (pos + 1) / (n + 1e-6) * 2 * math.pi
            for i in range(half):
                t = scaled / 10000 ** (2 * (i // 2) / half)
                want = math.sin(t) if i % 2 == 0 else math.cos(t)
                assert float(pe[y * w + x, axis * half + i]) == pytest.approx(want, abs=1e-5)
    with pytest.raises(ValueError, match="multiple of 4"):
        sine_position_encoding(2, 2, 6)
