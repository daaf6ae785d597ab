"""Faces that fill the frame: a second search on a padded copy of the images where nothing was found."""

from __future__ import annotations

import numpy as np

from facerec.detect.base import Detection, Detector
from facerec.errors import InputError
from facerec.image_batch import ImageBatch

#: A face that fills the frame (ID and badge photos, avatars, face datasets cropped at the face)
#: has no context around it, which detectors need (MTCNN most): an image where the first pass finds nothing is
#: searched again on a copy with a border of PAD_SHARE of its longest side on every side.
#: Measured on LFW View 2's pair images cropped to their MTCNN box (``python bench/tight_crops.py
#: sweep --sample 1500``, bench/reported/tight_crops_sweep.json): MTCNN alone missed 131 of 1,500
#: grey crops (8 of 1,500 in colour; YuNet none); a grey border found 119 / 124 / 126 / 124 of the
#: 131 at 10 / 20 / 30 / 50% of the side, the edge replicated 119 / 121 / 121 / 124; every
#: padding found all 8 colour misses. Only images where nothing was found pay: one more detection
#: on a larger copy (both passes together 16-21 ms per image at 30% on the 2-core machine).
PAD_SHARE = 0.3
PAD_MODE = "constant"  # or "edge": the image's border pixels replicated
PAD_GREY = 128


class PaddedRetry(Detector):
    """``inner`` on every image, then again on a padded copy (:data:`PAD_SHARE`) of the images where
    it found no face, so that a face filling the frame is found. Faces from the padded copy are
    mapped back: boxes clipped to the image (the border is not part of the picture; and no face
    is assumed where none was found), faces centred in the border dropped; landmarks
    are moved but not clipped (clipping moves a point, which would tilt the five-point warp).
    The first pass is untouched, so an image with a face found as before gets the same faces.

    :func:`create_detector` wraps every detector in one; ``inner`` is the detector itself, whose
    attributes stay reachable through this one."""

    def __init__(self, inner: Detector, share: float = PAD_SHARE, mode: str = PAD_MODE):
        if mode not in ("constant", "edge"):
            raise InputError(f"padding mode must be constant or edge, got {mode!r}")
        self.inner, self.share, self.mode = inner, share, mode
        self.name = inner.name
        # the content cache keys on ``id``: images cached as faceless before the retry are searched again
        self.id = f"{inner.id}-pad{share}{mode}"

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        found = self.inner.detect(batch)
        missed = [i for i, dets in enumerate(found) if not dets]
        if missed:
            pad = pad_px(batch.height, batch.width, self.share)
            again = self.inner.detect(padded(batch.subset(missed), pad, self.mode))
            for i, dets in zip(missed, again):
                found[i] = unpadded(dets, pad, batch.width, batch.height)
        return found

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


def pad_px(height: int, width: int, share: float) -> int:
    """The border, px on every side, for an image of this size."""
    return max(1, round(share * max(height, width)))


def padded(batch: ImageBatch, pad: int, mode: str) -> ImageBatch:
    """Each image of ``batch`` with ``pad`` pixels more on every side: grey or its edge replicated;
    host arrays stay host arrays, device tensors stay on their device (the GPU path)."""
    if batch.on_host:
        border = {"mode": "edge"} if mode == "edge" else {"constant_values": PAD_GREY}
        return ImageBatch([np.pad(img, ((pad, pad), (pad, pad), (0, 0)), **border) for img in batch.host], batch.device)
    import torch

    h, w = batch.height, batch.width
    out = []
    for img in batch.images:  # uint8 (3, H, W) on the device
        if mode == "edge":  # each padded pixel reads its nearest image pixel
            ys = torch.arange(-pad, h + pad, device=img.device).clamp_(0, h - 1)
            xs = torch.arange(-pad, w + pad, device=img.device).clamp_(0, w - 1)
            out.append(img[:, ys][:, :, xs])
        else:
            big = torch.full((img.shape[0], h + 2 * pad, w + 2 * pad), PAD_GREY, dtype=img.dtype, device=img.device)
            big[:, pad : pad + h, pad : pad + w] = img
            out.append(big)
    return ImageBatch(out, batch.device)


def unpadded(dets: list[Detection], pad: int, width: int, height: int) -> list[Detection]:
    """Faces found on a copy padded by ``pad`` px, in the original image's coordinates: boxes
    clipped to it, faces whose centre lies in the border dropped."""
    out = []
    for d in dets:
        x1, y1, x2, y2 = (v - pad for v in d.box)
        if not (0 <= (x1 + x2) / 2 < width and 0 <= (y1 + y2) / 2 < height):
            continue
        box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
        marks = None if d.landmarks is None else np.asarray(d.landmarks, np.float32) - np.float32(pad)
        out.append(Detection(tuple(float(v) for v in box), d.score, marks))
    return out
