"""torchvision's ``roi_align`` (``aligned=True``, ``sampling_ratio=-1``) for host images, in NumPy.

The margin crop FaceNet sees is this resampling: each output pixel the mean of a grid of bilinear
samples spread over its bin, ``ceil(roi side / output side)`` samples a side, pixel centres at
half-integers. Here it runs on a uint8 (H, W, 3) image without torch and without turning the whole
picture into floats.

Why it is fast: a sample's bilinear weights are a row weight times a column weight, and every
output row shares its sample rows (every output column its sample columns), so the whole crop is
``Wy @ region @ Wx.T``: Wy (S, h) holds each output row's weights on the region's h rows (all
its samples' two neighbours, divided by the samples a side), Wx (S, w) the columns'. Two small
matrix products per face instead of S * S * samples bilinear lookups.

Equal to torchvision's to float rounding (``tests/unit/test_cpu_without_torch.py``): sample
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
        top, wy = axis_weights(y1, y2, size, height)
        left, wx = axis_weights(x1, x2, size, width)
        region = image[top : top + wy.shape[1], left : left + wx.shape[1]].astype(np.float32)
        h, w = region.shape[:2]
        rows = (wy @ region.reshape(h, w * 3)).reshape(size, w, 3)  # (S, w, 3): output rows, region columns
        out[m] = rows.transpose(2, 0, 1) @ wx.T  # (3, S, w) @ (w, S)
    return out


def axis_weights(start: float, end: float, size: int, limit: int) -> tuple[int, np.ndarray]:
    """Along one axis of ``limit`` pixels, the span [start, end) cut into ``size`` bins: (first,
    W), W float32 (size, n) the weight of pixel ``first + i`` in bin k, the bin's samples averaged.
    Follows torchvision's ``roi_align`` kernel (aligned: pixel centres at half-integers) and its
    ``bilinear_interpolate``: a sample beyond a pixel outside the image counts as 0, one in the
    outer half pixel reads the edge."""
    f32 = np.float32
    start, end = f32(start) - f32(0.5), f32(end) - f32(0.5)
    length = end - start
    bin_size = f32(length / f32(size))
    grid = int(np.ceil(length / f32(size)))  # samples a bin, along this axis
    if grid <= 0 or limit <= 0:  # an empty span: torchvision's sum is then 0 too
        return 0, np.zeros((size, 1), f32)
    k = np.arange(size, dtype=f32)[:, None]
    i = np.arange(grid, dtype=f32)[None, :]
    # torchvision: start + k * bin_size + (i + .5) * bin_size / grid, each step in float32
    pos = (start + k * bin_size) + ((i + f32(0.5)) * bin_size) / f32(grid)
    inside = (pos >= -1.0) & (pos <= limit)
    pos = np.maximum(pos, f32(0))
    low = pos.astype(np.int64)  # pos >= 0: truncation is floor
    last = low >= limit - 1
    low = np.where(last, limit - 1, low)
    high = np.where(last, limit - 1, low + 1)
    frac = np.where(last, f32(0), pos - low.astype(f32))
    first = int(low[inside].min()) if inside.any() else 0
    span = int(high[inside].max()) - first + 1 if inside.any() else 1
    bins = np.broadcast_to(np.arange(size)[:, None], pos.shape)
    # each sample adds (1 - frac) to its low pixel and frac to its high one, in its bin's row
    index = np.concatenate([(bins * span + low - first)[inside], (bins * span + high - first)[inside]])
    weight = np.concatenate([(1 - frac.astype(np.float64))[inside], frac.astype(np.float64)[inside]])
    w = np.bincount(index, weight, minlength=size * span).reshape(size, span) / grid
    return first, w.astype(f32)
