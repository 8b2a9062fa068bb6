"""The instance clustering membership (ICM) loss of eq. (4)-(6), batched in plain torch.

Instances are given as an id map per image (0 = no instance, 1..M = instance), so every pixel
belongs to at most one instance and the GT membership matrix G (M x HW) is stored implicitly as
one value per pixel: ``g_ij`` for the pixel's own instance i (all other entries of column j are
zero by definition). Only the Hungarian matching leaves torch (scipy, on the small N x M costs).
"""

import functools
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

Pixels = Tuple[torch.Tensor, torch.Tensor]


def instance_pixels(depth: torch.Tensor, instance_ids: torch.Tensor) -> Pixels:
    """(image, pixel) indices, each (K,) long, of the pixels inside an instance with valid depth,
    in row-major order. Their number decides later shapes, so this waits for the device."""
    return ((depth > 0) & (instance_ids > 0)).nonzero(as_tuple=True)


def instance_median_depth(
    depth: torch.Tensor,
    instance_ids: torch.Tensor,
    num_instances: int,
    pixels: Optional[Pixels] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Centroid c_i of every instance: the median of its valid GT depths (Fig. 3).

    The median of an even count is the mean of the two middle values (numpy's convention).

    Args:
        depth: (B, P) GT depth; values <= 0 are invalid.
        instance_ids: (B, P) long in [0, M]; 0 means "no instance".
        num_instances: M.
        pixels: :func:`instance_pixels` of these inputs, when the caller has them already.

    Returns:
        medians: (B, M) float, 0 where an instance has no valid depth.
        present: (B, M) bool, instances with at least one valid depth.
    """
    batch, m = depth.shape[0], num_instances
    img, pix = instance_pixels(depth, instance_ids) if pixels is None else pixels
    segment = img * (m + 1) + instance_ids[img, pix]
    values = depth[img, pix]
    # Two stable sorts give segments in order, each sorted by depth.
    by_value = torch.argsort(values, stable=True)
    segment, values = segment[by_value], values[by_value]
    by_segment = torch.argsort(segment, stable=True)
    values = values[by_segment]
    # A scatter, not bincount: CUDA's bincount reads the largest value back to the host.
    counts = segment.new_zeros(batch * (m + 1)).scatter_add_(0, segment, torch.ones_like(segment))
    present = counts > 0
    if values.numel() == 0:
        medians = torch.zeros(batch * (m + 1), dtype=depth.dtype, device=depth.device)
    else:
        starts = counts.cumsum(0) - counts
        last = values.numel() - 1
        low = (starts + (counts - 1).clamp(min=0) // 2).clamp(max=last)
        high = (starts + counts // 2).clamp(max=last)
        medians = torch.where(present, 0.5 * (values[low] + values[high]), values.new_zeros(()))
    return medians.view(batch, m + 1)[:, 1:], present.view(batch, m + 1)[:, 1:]


def fcm_memberships(
    depth: torch.Tensor,
    instance_ids: torch.Tensor,
    medians: torch.Tensor,
    present: torch.Tensor,
    fuzziness: float = 2.0,
    eps: float = 1e-6,
    pixels: Optional[Pixels] = None,
) -> torch.Tensor:
    """Fuzzy c-means memberships of eq. (4) of every pixel for its own instance.

    ``g_ij = |x_j - c_i|^(-2/(m-1)) / sum_k |x_j - c_k|^(-2/(m-1))`` with k over all instances
    that have a centroid, computed as a softmax of ``-(2/(m-1)) log|x_j - c_k|`` so that
    ``x_j == c_i`` gives g_ij -> 1 (distances are clamped at ``eps``) instead of inf / inf.

    Args:
        depth: (B, P) GT depth x_j (<= 0 invalid).
        instance_ids: (B, P) long in [0, M].
        medians, present: (B, M) from :func:`instance_median_depth`.
        fuzziness: the degree of fuzziness m (> 1).
        eps: smallest distance, in depth units.
        pixels: :func:`instance_pixels` of these inputs, when the caller has them already.

    Returns:
        (B, P) float: g_ij for the pixel's instance i; 0 outside instances and without depth.
    """
    if fuzziness <= 1:
        raise ValueError(f"the degree of fuzziness m must be > 1, got {fuzziness}")
    out = torch.zeros_like(depth)
    img, pix = instance_pixels(depth, instance_ids) if pixels is None else pixels
    if img.numel() == 0:
        return out
    x = depth[img, pix]
    distance = (x[:, None] - medians[img]).abs().clamp_min(eps)
    log_w = (-2.0 / (fuzziness - 1.0)) * distance.log()
    log_w = log_w.masked_fill(~present[img], float("-inf"))
    own = (instance_ids[img, pix] - 1)[:, None]
    out[img, pix] = log_w.log_softmax(dim=-1).gather(1, own).squeeze(1).exp()
    return out


@functools.lru_cache(maxsize=8)  # an entry holds L * H * W int64 (10 MB at 3 x 352 x 1216)
def _level_cells(
    image_size: Tuple[int, int], level_sizes: Tuple[Tuple[int, int], ...], device: torch.device
) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """(L, P) long: the cell ``l * Q + y * h_l // H * w_l + x * w_l // W`` of every pixel at
    every level, Q = the largest h_l * w_l; (L, 1) long: l * Q; and Q. Cached: a training run
    sees few padded sizes, and the cache is small enough for one that sees many."""
    height, width = image_size
    q_max = max(h * w for h, w in level_sizes)
    cells = []
    for level, (h, w) in enumerate(level_sizes):
        rows = torch.arange(height, device=device) * h // height
        cols = torch.arange(width, device=device) * w // width
        cells.append((rows[:, None] * w + cols[None, :]).reshape(-1) + level * q_max)
    offsets = torch.arange(len(level_sizes), device=device)[:, None] * q_max
    return torch.stack(cells), offsets, q_max


def pool_memberships_levels(
    memberships: torch.Tensor,
    instance_ids: torch.Tensor,
    valid_depth: torch.Tensor,
    image_size: Tuple[int, int],
    level_sizes: Sequence[Tuple[int, int]],
    num_instances: int,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`pool_memberships` at L resolutions at once, zero-padded to the largest one.

    Two scatters for all levels (instead of two per level): on a GPU the loss is bound by the
    number of kernels it launches, not by their work.

    Args:
        memberships, instance_ids, valid_depth, image_size, num_instances: as in
            :func:`pool_memberships`.
        level_sizes: L sizes (h_l, w_l).

    Returns:
        G: (L, B, M, Q) pooled memberships, Q = max h_l * w_l; columns past h_l * w_l are 0.
        valid: (L, B, Q) bool, cells holding at least one valid-depth pixel (False past
            h_l * w_l).
    """
    level_sizes = tuple(tuple(int(v) for v in size) for size in level_sizes)
    cells, offsets, q_max = _level_cells(tuple(image_size), level_sizes, memberships.device)
    num_levels, batch, m = len(level_sizes), memberships.shape[0], num_instances
    weight = valid_depth.to(memberships.dtype)
    counts = memberships.new_zeros(batch, num_levels * q_max)
    counts.scatter_add_(1, cells.reshape(1, -1).expand(batch, -1), weight.repeat(1, num_levels))
    # Slot of pixel j at level l: (l * (M + 1) + id_j) * Q + cell; cells hold l * Q + cell.
    slot = (instance_ids.clamp(min=0) * q_max)[:, None, :] + (cells + offsets * m)
    sums = memberships.new_zeros(batch, num_levels * (m + 1) * q_max)
    sums.scatter_add_(1, slot.reshape(batch, -1), (memberships * weight).repeat(1, num_levels))
    sums = sums.view(batch, num_levels, m + 1, q_max)[:, :, 1:]
    counts = counts.view(batch, num_levels, 1, q_max)
    pooled = (sums / counts.clamp(min=1)).transpose(0, 1)
    return pooled, (counts[:, :, 0] > 0).transpose(0, 1)


def pool_memberships(
    memberships: torch.Tensor,
    instance_ids: torch.Tensor,
    valid_depth: torch.Tensor,
    image_size: Tuple[int, int],
    level_size: Tuple[int, int],
    num_instances: int,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Downsamples G to a feature resolution: the mean over the valid-depth pixels of each cell.

    Args:
        memberships: (B, P) per-pixel g from :func:`fcm_memberships`, P = H * W.
        instance_ids: (B, P) long in [0, M].
        valid_depth: (B, P) bool, pixels with valid GT depth.
        image_size: (H, W) of the pixel grid.
        level_size: (h, w) of the feature map; cell of pixel (y, x) is (y * h // H, x * w // W).
        num_instances: M.

    Returns:
        G: (B, M, h * w) pooled memberships.
        valid: (B, h * w) bool, cells holding at least one valid-depth pixel.
    """
    pooled, valid = pool_memberships_levels(
        memberships, instance_ids, valid_depth, image_size, [level_size], num_instances
    )
    return pooled[0], valid[0]


def icm_cost(
    attn: torch.Tensor, memberships: torch.Tensor, valid: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Matching costs of eq. (5) between every cluster i and every instance i'.

    ``l_ii' = -g^_i'^T log a^_i - (1 - g^_i')^T log(1 - a^_i)`` over the valid pixels, with a^_i
    and g^_i' the rows of A1 and G L2-normalised over those pixels. Logs see values clamped to
    [eps, 1 - eps].

    Args:
        attn: (B, N, Q) A1 at one resolution.
        memberships: (B, M, Q) G at the same resolution.
        valid: (B, Q) bool, pixels that count (valid GT depth).

    Returns:
        (B, N, M) float32 (or float64) costs, also under autocast.
    """
    # Logs of small probabilities, and matmuls over every pixel: never in half precision.
    with torch.autocast(attn.device.type, enabled=False):
        attn = attn.to(torch.promote_types(attn.dtype, torch.float32))
        v = valid.to(attn.dtype)[:, None, :]
        a = attn * v
        a_hat = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
        g = memberships.to(attn.dtype) * v
        g_hat = g / g.norm(dim=-1, keepdim=True).clamp_min(eps)
        log_a = a_hat.clamp(eps, 1.0 - eps).log() * v
        log_not_a = (1.0 - a_hat).clamp_min(eps).log() * v
        g_t = g_hat.transpose(1, 2)
        # -(g . log a) - sum(log(1 - a)) + (g . log(1 - a)), expanded so that it is two matmuls.
        return -torch.bmm(log_a, g_t) - log_not_a.sum(-1, keepdim=True) + torch.bmm(log_not_a, g_t)


def hungarian_match(
    cost: torch.Tensor, present: torch.Tensor
) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """Minimum-cost one-to-one matching of clusters to the present instances (scipy).

    Args:
        cost: (B, N, M) costs.
        present: (B, M) bool; absent instances take no part.

    Returns:
        per image, (cluster indices, instance indices): two long tensors of length min(N, M_b).
    """
    costs = cost.detach().to("cpu", torch.float64).numpy()
    present_np = present.cpu().numpy()
    matches = []
    for b in range(costs.shape[0]):
        cols = np.flatnonzero(present_np[b])
        if cols.size == 0:
            rows, matched = np.zeros(0, np.int64), np.zeros(0, np.int64)
        else:
            rows, picked = linear_sum_assignment(costs[b][:, cols])
            matched = cols[picked]
        matches.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(matched)))
    return matches


NORMALIZERS = ("matched", "clusters")


def matched_cost_means(
    cost: torch.Tensor,
    matches: Sequence[Tuple[torch.Tensor, torch.Tensor]],
    normalizer: str = "matched",
    num_groups: int = 1,
) -> torch.Tensor:
    """:func:`matched_cost_mean` of G groups of images stacked group-major in one cost tensor.

    Args:
        cost: (G * B, N, M); rows g * B .. g * B + B - 1 are group g (a resolution).
        matches: output of :func:`hungarian_match` on ``cost``.
        normalizer: see :func:`matched_cost_mean`.
        num_groups: G.

    Returns:
        (G,) one mean per group; always connected to ``cost``'s graph.
    """
    if normalizer not in NORMALIZERS:
        raise ValueError(f"ICM normalizer must be one of {NORMALIZERS}, got {normalizer!r}")
    images, num_clusters = cost.shape[:2]
    lengths = np.array([len(r) for r, _ in matches], dtype=np.int64)
    pairs = int(lengths.sum())
    host = np.concatenate(
        [np.repeat(np.arange(len(matches)), lengths)]
        + [r.numpy() for r, _ in matches]
        + [c.numpy() for _, c in matches]
        + [lengths]
    )
    # One host-to-device copy: image, row and column of every pair, then the pairs per image.
    device_copy = torch.from_numpy(host).to(cost.device)
    image, rows, cols = device_copy[: 3 * pairs].view(3, pairs)
    counts = device_copy[3 * pairs :].to(cost.dtype)
    sums = cost.new_zeros(images).index_add_(0, image, cost[image, rows, cols])
    if normalizer == "matched":
        per_image = sums / counts.clamp(min=1)
    else:
        per_image = sums / num_clusters
    # Frames without a matched pair (no instance with valid depth) are not averaged in as 0.
    per_image, contributes = per_image.view(num_groups, -1), (counts > 0).view(num_groups, -1)
    means = per_image.sum(1) / contributes.sum(1).clamp(min=1)
    return means + cost.sum() * 0.0


def matched_cost_mean(
    cost: torch.Tensor,
    matches: Sequence[Tuple[torch.Tensor, torch.Tensor]],
    normalizer: str = "matched",
) -> torch.Tensor:
    """Eq. (6) per image, then the mean over the images that have at least one matched pair.

    Args:
        cost: (B, N, M).
        matches: output of :func:`hungarian_match`.
        normalizer: "matched" divides an image's matched costs by its number of pairs
            min(N, M_b); "clusters" divides by N, eq. (6) read literally (the loss then scales
            with M_b / N).

    Returns:
        scalar, 0 when no image has a matched pair; always connected to ``cost``'s graph.
    """
    return matched_cost_means(cost, matches, normalizer, num_groups=1)[0]


def icm_loss(
    attns: Sequence[torch.Tensor],
    level_sizes: Sequence[Tuple[int, int]],
    depth: torch.Tensor,
    instance_ids: torch.Tensor,
    fuzziness: float = 2.0,
    normalizer: str = "matched",
    stack_levels: Optional[bool] = None,
    num_instances: Optional[int] = None,
) -> List[torch.Tensor]:
    """The ICM loss at every given resolution (eq. 4-6, summed as eq. 7 by the caller).

    Args:
        attns: per resolution l, A1_l of shape (B, N, h_l * w_l).
        level_sizes: per resolution, (h_l, w_l).
        depth: (B, H, W) GT depth at the input resolution (<= 0 invalid); pixels without valid
            depth take no part in G or in the cost.
        instance_ids: (B, H, W) long id map, 0 = no instance, 1..M.
        fuzziness: m of eq. (4).
        normalizer: see :func:`matched_cost_mean`.
        stack_levels: compute all resolutions as one zero-padded batch (fewer, larger kernels;
            the same values); default: on every device but the CPU.
        num_instances: M, at least the largest id in ``instance_ids`` (more only adds absent
            instances); default: read from ``instance_ids``, which waits for the device. A
            caller holding the ids on the host passes it so that the loss queues its kernels
            without that wait.

    Returns:
        list of scalars, one per resolution: the mean over the frames with at least one
        instance holding valid depth; zero (and finite) when there is none. G is a target: no
        gradient reaches ``depth``.
    """
    if len(attns) != len(level_sizes):
        raise ValueError("one level size per attention matrix is needed")
    if normalizer not in NORMALIZERS:
        raise ValueError(f"ICM normalizer must be one of {NORMALIZERS}, got {normalizer!r}")
    batch, height, width = depth.shape
    depth = depth.reshape(batch, -1)
    ids = instance_ids.reshape(batch, -1).long()
    if num_instances is None:
        num_instances = int(ids.max()) if ids.numel() else 0
    if num_instances == 0:
        return [attn.sum() * 0.0 for attn in attns]
    with torch.no_grad():
        depth = depth.detach()
        pixels = instance_pixels(depth, ids)
        medians, present = instance_median_depth(depth, ids, num_instances, pixels)
        g = fcm_memberships(depth, ids, medians, present, fuzziness, pixels=pixels)
        valid_depth = depth > 0
    # On a GPU the loss is bound by the number of kernels it launches, so all levels go through
    # as one zero-padded batch (one cost computation, one copy of the costs to the host for the
    # matching). On the CPU the padding's extra work would cost more than the launches it saves.
    levels = list(range(len(attns)))
    if stack_levels is None:
        stack_levels = attns[0].device.type != "cpu"
    groups = [levels] if stack_levels else [[lvl] for lvl in levels]
    losses = []
    for group in groups:
        with torch.no_grad():
            pooled, valid = pool_memberships_levels(
                g, ids, valid_depth, (height, width), [level_sizes[i] for i in group], num_instances
            )
        q_max = pooled.shape[-1]
        dtype = torch.promote_types(attns[group[0]].dtype, torch.float32)
        with torch.autocast(attns[group[0]].device.type, enabled=False):
            stacked = torch.cat(
                [F.pad(attns[i].to(dtype), (0, q_max - attns[i].shape[-1])) for i in group]
            )
        cost = icm_cost(stacked, pooled.flatten(0, 1), valid.flatten(0, 1))
        matches = hungarian_match(cost, present.repeat(len(group), 1))
        losses += matched_cost_means(cost, matches, normalizer, num_groups=len(group)).unbind(0)
    return losses
