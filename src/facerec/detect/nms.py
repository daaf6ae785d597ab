"""Greedy non-maximum suppression per image, for a whole batch of images at once: NumPy arrays on the
host (:func:`numpy_batched_nms`, no PyTorch needed), or tensors on their device.

``torchvision.ops.batched_nms`` loops over the images in Python once a batch holds more than 5,000
boxes on a GPU (its "vanilla" path: per image a mask, a sync and an NMS kernel whose greedy pass
runs on the host), and a batch of 512 LFW images holds 15,000-30,000 P-Net candidates. Here every
image's boxes are laid out as one row of a padded (images, K) table, the overlaps of all pairs
within a row are computed at once, and the greedy rule is solved by iteration (see
:func:`_greedy`): a few dozen kernels per call, whatever the number of images. An image with more
than ``MAX_BOXES_PER_IMAGE`` boxes (a huge photo's first P-Net scale) goes to torchvision instead.
On a CPU, where the tables' dozens of kernels cost more than they save, "union" NMS calls
torchvision's serial kernel once per image instead (same answers, same order).

NumPy arrays (the ONNX Runtime MTCNN's) take :func:`numpy_batched_nms`: the same answers and order
as the tensor paths, greedy for every image of the batch at once, one round per kept box.
"""

from __future__ import annotations

import numpy as np

# overlap entries computed at once (images x K x K): ~130 MB per float table, a few tables live
MAX_ENTRIES = 2**25
# above this many boxes in one image the K x K table is too big: torchvision's NMS takes over
MAX_BOXES_PER_IMAGE = 4096
# on a CPU, "union" NMS runs torchvision's serial kernel image by image (see _per_image_torchvision)
CPU_PER_IMAGE = True


def batched_nms(boxes, scores, idxs, threshold: float, mode: str = "union"):
    """Indices of the boxes kept by greedy NMS within each image, best score first.

    Args:
        boxes: float (M, 4) x1, y1, x2, y2; scores: (M,); idxs: int64 (M,) image of each box; all
            three torch tensors, or all three NumPy arrays (then the indices are a NumPy array too).
        threshold: a box is dropped when its overlap with a kept, higher-scoring box of the same
            image is greater than this.
        mode: ``union`` = intersection / union with areas (x2 - x1) * (y2 - y1), exactly as
            ``torchvision.ops.nms``; ``min`` = intersection / the smaller area, areas counted in
            whole pixels ((x2 - x1 + 1) * (y2 - y1 + 1)), as MTCNN's last stage.
    """
    if mode not in ("union", "min"):
        raise ValueError(f"mode must be union or min, got {mode!r}")
    if isinstance(boxes, np.ndarray):
        return numpy_batched_nms(boxes, scores, idxs, threshold, mode)
    import torch

    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    # group the boxes by image, best first within each image
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[torch.argsort(idxs[order], stable=True)]
    _, row, counts = torch.unique_consecutive(idxs[order], return_inverse=True, return_counts=True)
    if mode == "union" and boxes.device.type == "cpu" and CPU_PER_IMAGE:
        return _per_image_torchvision(boxes, scores, order, counts, threshold)
    k = int(counts.max())
    if mode == "union" and k > MAX_BOXES_PER_IMAGE:  # a huge photo: O(K) memory beats K x K
        from torchvision.ops import batched_nms as torchvision_batched_nms

        return torchvision_batched_nms(boxes, scores, idxs, threshold)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(order), device=boxes.device) - starts[row]  # 0 = the image's best box
    # rows ordered by box count, so that each chunk of rows is only as wide as its fullest image
    by_count = torch.argsort(counts, descending=True, stable=True)
    rows = len(counts)
    row = torch.empty_like(by_count).scatter_(0, by_count, torch.arange(rows, device=boxes.device))[row]
    counts = counts[by_count]
    table = boxes.new_zeros((rows, k, 4))
    table[row, rank] = boxes[order].to(table.dtype)
    valid = torch.zeros((rows, k), dtype=torch.bool, device=boxes.device)
    valid[row, rank] = True
    keep = torch.zeros_like(valid)
    widths = counts.tolist()
    s = 0
    while s < rows:
        w = widths[s]  # the widest row of this chunk
        step = max(1, MAX_ENTRIES // (w * w))
        keep[s : s + step, :w] = _greedy(_overlap(table[s : s + step, :w], mode) > threshold, valid[s : s + step, :w])
        s += step
    kept = order[keep[row, rank]]
    return kept[torch.argsort(scores[kept], descending=True, stable=True)]


def numpy_batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, threshold: float, mode: str = "union"):
    """:func:`batched_nms` on NumPy arrays: the same boxes kept, in the same order, with the overlaps
    computed in the boxes' dtype by the same formulas (torchvision's for "union", the table's for
    "min"). Greedy for all images at once: each round keeps the best undecided box of every image and
    drops the boxes it overlaps too much, so a batch takes as many rounds as its busiest image keeps
    boxes, each a few array operations over the boxes still undecided (a Python loop per kept box
    took ~4x longer on LFW batches)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")  # best first; ties keep their order, as torch's stable sort
    order = order[np.argsort(idxs[order], kind="stable")]  # grouped by image
    kept = order[_greedy_rounds(boxes[order], idxs[order], threshold, mode)]
    return kept[np.argsort(-scores[kept], kind="stable")]


def _greedy_rounds(boxes: np.ndarray, group: np.ndarray, threshold: float, mode: str) -> np.ndarray:
    """Greedy NMS within each group of ``boxes`` (sorted by group, best first within a group): a bool
    mask of the boxes kept."""
    keep = np.zeros(len(boxes), bool)
    alive = np.arange(len(boxes))  # undecided boxes, in order
    while len(alive):
        g = group[alive]
        head = np.empty(len(alive), bool)  # the best undecided box of each group: kept
        head[0] = True
        np.not_equal(g[1:], g[:-1], out=head[1:])
        heads = alive[head]
        keep[heads] = True
        rest = ~head
        others = alive[rest]
        over = _pair_overlap(boxes[heads[np.cumsum(head)[rest] - 1]], boxes[others], mode)
        alive = others[~(over > threshold)]  # NaN (two empty boxes) suppresses nothing, as in torchvision
    return keep


def _pair_overlap(a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
    """Overlap of box a[i] with box b[i], in the boxes' dtype: "union" as torchvision's CPU kernel
    computes it, "min" as :func:`_overlap` (whole-pixel areas, the smaller one)."""
    one = 1 if mode == "min" else 0  # adding 0 changes no value: the union formula is torchvision's

    def area(b):
        return (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)

    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + one
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + one
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_a, area_b = area(a), area(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        if mode == "min":
            return inter / np.minimum(area_a, area_b)
        return inter / (area_a + area_b - inter)


def _per_image_torchvision(boxes, scores, order, counts, threshold: float):
    """On a CPU: ``torchvision.ops.nms`` (one serial C++ call) on each image's run of ``order``,
    with the table path's answer and order. Within an image the boxes come best first and
    torchvision sorts stably, so ties keep their order; the images come in the order the table
    path lists its kept boxes before the final sort. On the 2-core development machine it took
    0.056 s where the tables took 0.145 s (the union NMS of two LFW batches of 64), and it suffers
    less when another process holds a core: no parallel kernels, whose threads wait on each other."""
    import torch
    from torchvision.ops import nms

    widths = counts.tolist()
    starts = [0]
    for w in widths[:-1]:
        starts.append(starts[-1] + w)
    b, s = boxes[order], scores[order]
    parts = []
    for lo, width in zip(starts, widths):
        hi = lo + width
        parts.append(nms(b[lo:hi], s[lo:hi], threshold) + lo)
    kept = order[torch.cat(parts)]
    return kept[torch.argsort(scores[kept], descending=True, stable=True)]


def _overlap(b, mode: str):
    """(R, K, K) overlap of every pair of boxes within each row of b (R, K, 4)."""
    import torch

    one = 1.0 if mode == "min" else 0.0
    x1, y1, x2, y2 = b.unbind(2)
    iw = (torch.minimum(x2[:, :, None], x2[:, None, :]) - torch.maximum(x1[:, :, None], x1[:, None, :]) + one).clamp(
        min=0
    )
    ih = (torch.minimum(y2[:, :, None], y2[:, None, :]) - torch.maximum(y1[:, :, None], y1[:, None, :]) + one).clamp(
        min=0
    )
    inter = iw * ih
    area = (x2 - x1 + one) * (y2 - y1 + one)
    if mode == "min":
        return inter / torch.minimum(area[:, :, None], area[:, None, :])
    return inter / (area[:, :, None] + area[:, None, :] - inter)


def _greedy(over, valid):
    """Greedy NMS within each row: over (R, K, K) bool, [r, i, j] = box i of row r overlaps box j too
    much; boxes are in rank order. A box is kept when no kept box ranked above it overlaps it.
    Iterating that rule from "all kept" fixes one more rank each round at the least (rank 0 at
    once, rank j once ranks < j are right), and a fixed point satisfies the rule, which only the
    greedy answer does: so the loop ends with it, in a handful of rounds in practice."""
    import torch

    k = over.shape[1]
    above = torch.ones(k, k, dtype=torch.bool, device=over.device).triu(1)  # [i, j]: i ranks above j
    suppresses = over & above & valid[:, :, None] & valid[:, None, :]
    keep = valid.clone()
    for _ in range(k):
        new = valid & ~(suppresses & keep[:, :, None]).any(1)
        if torch.equal(new, keep):
            break
        keep = new
    return keep
