"""Helpers for detectors: large photos are searched on a downscaled copy."""

from __future__ import annotations

import numpy as np
from PIL import Image

from facerec.detect.base import Detection
from facerec.image_batch import ImageBatch
from facerec.limits import DETECT_MAX_SIDE

# Images larger than DETECT_MAX_SIDE (longest side, px) are detected on a downscaled copy; boxes are
# mapped back and crops are cut from the full-resolution image. The limit is set in facerec.limits
# and stays importable from here (the detectors read it here).


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = max(h, w) / max_side
    if scale <= 1:
        return image, 1.0
    small = Image.fromarray(image).resize((max(1, round(w / scale)), max(1, round(h / scale))), Image.BILINEAR)
    return np.asarray(small), scale


def downscaled_batches(images: list[np.ndarray], batch_size: int, max_pixels: int | None = None):
    """Yield ``(indices, images, scales)``: the images, large photos downscaled to DETECT_MAX_SIDE,
    grouped by shape, at most ``batch_size`` (and ``max_pixels`` pixels, though never fewer than
    one image) at a time; ``scales`` map coordinates back to the originals."""
    prepared = [downscale(img, DETECT_MAX_SIDE) for img in images]
    by_shape: dict[tuple, list[int]] = {}
    for i, (img, _) in enumerate(prepared):
        by_shape.setdefault(img.shape, []).append(i)
    for shape, indices in by_shape.items():
        step = batch_size if max_pixels is None else max(1, min(batch_size, max_pixels // (shape[0] * shape[1])))
        for start in range(0, len(indices), step):
            chunk = indices[start : start + step]
            yield chunk, [prepared[i][0] for i in chunk], [prepared[i][1] for i in chunk]


def detect_in_batches(images: list[np.ndarray], batch_size: int, detect_batch) -> list[list[Detection]]:
    """Run ``detect_batch`` (uint8 (n, H, W, 3) -> per image a list of (box, score, landmarks)) over
    batches of equal-sized images, large photos on a downscaled copy; boxes mapped back, largest first."""
    out: list[list[Detection]] = [[] for _ in images]
    for chunk, small, scales in downscaled_batches(images, batch_size):
        for i, faces, scale in zip(chunk, detect_batch(np.stack(small)), scales):
            dets = [
                Detection(tuple(float(v) * scale for v in box), float(score), np.asarray(marks) * scale)
                for box, score, marks in faces
            ]
            out[i] = sorted(dets, key=lambda d: d.area, reverse=True)
    return out


def search_tensor(batch: ImageBatch):
    """The batch as one float tensor (n, 3, h, w) 0..255 on its device, its longest side at most
    DETECT_MAX_SIDE, and the factor that maps coordinates in it back to the images: the GPU's
    path (PyTorch); the CPU's detectors read the host images (:func:`downscale`)."""
    scale = max(batch.height, batch.width) / DETECT_MAX_SIDE
    if scale <= 1:
        return batch.tensor, 1.0
    if batch.on_host:  # a large photo: the copy is made on the host, so the full-size picture
        # never becomes a float tensor
        small = [downscale(img, DETECT_MAX_SIDE)[0] for img in batch.host]
        return ImageBatch(small, batch.device).tensor, batch.width / small[0].shape[1]
    import torch.nn.functional as F

    size = (max(1, round(batch.height / scale)), max(1, round(batch.width / scale)))
    return F.interpolate(batch.tensor, size=size, mode="bilinear", antialias=True, align_corners=False), scale
