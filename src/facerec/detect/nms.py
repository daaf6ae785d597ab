"""Greedy non-maximum suppression per image, for a whole batch of images at once, on the device.

``torchvision.ops.batched_nms`` loops over the images in Python once a batch holds more than 5,000
boxes on a GPU (its "vanilla" path: per image a mask, a sync and an NMS kernel whose greedy pass
runs on the host), and a batch of 512 LFW images holds 15,000-30,000 P-Net candidates. Here every
image's boxes are laid out as one row of a padded (images, K) table, the overlaps of all pairs
within a row are computed at once, and the greedy rule is solved by iteration (see
:func:`_greedy`): a few dozen kernels per call, whatever the number of images. An image with more
than ``MAX_BOXES_PER_IMAGE`` boxes (a huge photo's first P-Net scale) goes to torchvision instead.
On a CPU, where the tables' dozens of kernels cost more than they save, "union" NMS calls
torchvision's serial kernel once per image instead (same answers, same order).
"""

from __future__ import annotations

# overlap entries computed at once (images x K x K): ~130 MB per float table, a few tables live
MAX_ENTRIES = 2**25
# above this many boxes in one image the K x K table is too big: torchvision's NMS takes over
MAX_BOXES_PER_IMAGE = 4096
# on a CPU, "union" NMS runs torchvision's serial kernel image by image (see _per_image_torchvision)
CPU_PER_IMAGE = True


def batched_nms(boxes, scores, idxs, threshold: float, mode: str = "union"):
    """Indices of the boxes kept by greedy NMS within each image, best score first.

    Args:
        boxes: float (M, 4) x1, y1, x2, y2; scores: (M,); idxs: int64 (M,) image of each box.
        threshold: a box is dropped when its overlap with a kept, higher-scoring box of the same
            image is greater than this.
        mode: ``union`` = intersection / union with areas (x2 - x1) * (y2 - y1), exactly as
            ``torchvision.ops.nms``; ``min`` = intersection / the smaller area, areas counted in
            whole pixels ((x2 - x1 + 1) * (y2 - y1 + 1)), as MTCNN's last stage.
    """
    import torch

    if mode not in ("union", "min"):
        raise ValueError(f"mode must be union or min, got {mode!r}")
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
