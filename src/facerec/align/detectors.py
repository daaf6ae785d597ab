"""Helpers for detectors: large photos are searched on a downscaled copy."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .base import Detection

#: Images larger than this (longest side, px) are detected on a downscaled copy; boxes are
#: mapped back and crops are cut from the full-resolution image.
DETECT_MAX_SIDE = 1600


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = max(h, w) / max_side
    if scale <= 1:
        return image, 1.0
    small = Image.fromarray(image).resize((max(1, round(w / scale)), max(1, round(h / scale))), Image.BILINEAR)
    return np.asarray(small), scale


def detect_in_batches(images: list[np.ndarray], batch_size: int, detect_batch) -> list[list[Detection]]:
    """Run ``detect_batch`` (uint8 (n, H, W, 3) -> per image a list of (box, score, landmarks)) over
    batches of equal-sized images, large photos on a downscaled copy; boxes mapped back, largest first."""
    prepared = [downscale(img, DETECT_MAX_SIDE) for img in images]
    out: list[list[Detection]] = [[] for _ in images]
    by_shape: dict[tuple, list[int]] = {}
    for i, (img, _) in enumerate(prepared):
        by_shape.setdefault(img.shape, []).append(i)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            found = detect_batch(np.stack([prepared[i][0] for i in chunk]))
            for i, faces in zip(chunk, found):
                scale = prepared[i][1]
                dets = [
                    Detection(tuple(float(v) * scale for v in box), float(score), np.asarray(marks) * scale)
                    for box, score, marks in faces
                ]
                out[i] = sorted(dets, key=lambda d: d.area, reverse=True)
    return out
