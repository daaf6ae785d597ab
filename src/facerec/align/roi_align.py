"""torchvision's ``roi_align`` (``aligned=True``, ``sampling_ratio=-1``) for host images, in NumPy.

The margin crop FaceNet sees is this resampling: each output pixel the mean of a grid of bilinear
samples spread over its bin, ``ceil(roi side / output side)`` samples a side, pixel centres at
half-integers. Here it runs on a uint8 (H, W, 3) image without torch and without turning the whole
picture into floats.

Why it is fast: a sample's bilinear weights are a row weight times a column weight, and every
output row shares its samples' rows (every output column its samples' columns). So the crop is
resampled along one axis, then the other: each output row is a weighted sum of a few image rows
(two per sample: ``2 * ceil(roi height / size)`` taps, 2 for a face about the crop's size), then
each output column of a few columns of that. A handful of vectorised multiply-adds per face, and
no matrix product: OpenBLAS's threads on products this small cost more than the work, many times
more when the cores are busy (64 faces: 63 ms single-threaded, 385 ms with 2 threads under load).

Equal to torchvision's to float rounding (``tests/integration/test_cpu_without_torch.py``): sample
positions are computed in float32 in torchvision's order; sums in another order.
"""

from __future__ import annotations

import numpy as np


def roi_align(image: np.ndarray, boxes, size: int) -> np.ndarray:
    """float32 (M, 3, size, size), values 0..255: each box (x1, y1, x2, y2), in pixels of the
    uint8 (H, W, 3) ``image``, resampled as ``torchvision.ops.roi_align(image as (1, 3, H, W)
    float, [[0, *box]], (size, size), spatial_scale=1, sampling_ratio=-1, aligned=True)``."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.empty((len(boxes), 3, size, size), np.float32)
    height, width = image.shape[:2]
    for m, (x1, y1, x2, y2) in enumerate(boxes):
        rows, row_w = axis_taps(y1, y2, size, height)
        cols, col_w = axis_taps(x1, x2, size, width)
        first, last = int(cols.min()), int(cols.max()) + 1
        strip = image[:, first:last]  # only the columns any sample reads
        # along the height: (size, w, 3), each output row the weighted sum of its taps' image rows
        across = weighted_taps(strip, rows, row_w)
        # along the width: (size, size, 3) from the columns of that
        out[m] = weighted_taps(across.transpose(1, 0, 2), cols - first, col_w).transpose(2, 1, 0)
    return out


def weighted_taps(source: np.ndarray, taps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """float32 (size, ...): row k is sum_t weights[k, t] * source[taps[k, t]]."""
    acc = weights[:, 0, None, None] * source[taps[:, 0]].astype(np.float32)
    for t in range(1, taps.shape[1]):
        acc += weights[:, t, None, None] * source[taps[:, t]]
    return acc


def axis_taps(start: float, end: float, size: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis of ``limit`` pixels, the span [start, end) cut into ``size`` bins: (taps,
    weights), int64 and float32 (size, T): bin k reads pixels ``taps[k]`` with ``weights[k]``
    (its samples' two bilinear neighbours each, averaged over the samples). Follows torchvision's
    ``roi_align`` kernel (aligned: pixel centres at half-integers) and its
    ``bilinear_interpolate``: a sample more than a pixel outside the image counts as 0, one in the
    outer pixel reads the edge."""
    f32 = np.float32
    start, end = f32(start) - f32(0.5), f32(end) - f32(0.5)
    length = end - start
    bin_size = f32(length / f32(size))
    grid = int(np.ceil(length / f32(size)))  # samples a bin, along this axis
    if grid <= 0 or limit <= 0:  # an empty span: torchvision's sum is then 0 too
        return np.zeros((size, 1), np.int64), np.zeros((size, 1), f32)
    k = np.arange(size, dtype=f32)[:, None]
    i = np.arange(grid, dtype=f32)[None, :]
    # torchvision: start + k * bin_size + (i + .5) * bin_size / grid, each step in float32
    pos = (start + k * bin_size) + ((i + f32(0.5)) * bin_size) / f32(grid)
    inside = (pos >= -1.0) & (pos <= limit)
    pos = np.maximum(pos, f32(0))
    low = np.minimum(pos.astype(np.int64), limit - 1)  # pos >= 0: truncation is floor
    last = low >= limit - 1  # at the edge both neighbours are the last pixel
    high = np.where(last, low, low + 1)
    frac = np.where(last, f32(0), pos - low.astype(f32))
    share = np.where(inside, f32(1) / f32(grid), f32(0))
    taps = np.concatenate([low, high], 1)
    weights = np.concatenate([(f32(1) - frac) * share, frac * share], 1)
    return taps, weights.astype(f32)
