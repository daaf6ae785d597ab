"""Faces that fill the frame: a second search on a padded copy of the images where nothing was
found, or where a face fills the frame."""

from __future__ import annotations

import numpy as np

from facerec.detect.base import Detection, Detector, box_iou
from facerec.errors import InputError
from facerec.image_batch import ImageBatch

#: A face that fills the frame (ID and badge photos, avatars, face datasets cropped at the face)
#: has no context around it, which detectors need (MTCNN most): an image where the first pass
#: finds nothing, or finds a face that fills the frame (:data:`FILL_SHARE`), is searched again
#: on a copy with a border of PAD_SHARE of its longest side on every side, the image's edge
#: pixels continued into it. Chosen on LFW's development set (View 1's training pairs cropped to
#: their MTCNN box, ``python bench/tight_crops.py build --view dev``; View 2 is kept for the
#: report), CASIA FaceNet, all 5.9 million pairs of the 3,443 colour crops (``python
#: bench/tight_crops.py choose``, bench/reported/tight_crops_choose.json), equal error rate and
#: verification rate at 0.1% false accepts: the first pass alone, a grey border of 30% where
#: nothing was found (as before) 2.21% / 85.6%; searched again also where a face fills the frame,
#: edge 20% 1.90% / 88.2%, edge 30% 1.91% / 87.4%, grey 30% 2.08% / 87.3%, grey 20% 2.12% /
#: 86.7%. (Where nothing was found, on View 2's crops, a grey border of 30% had found 126 of
#: MTCNN's 131 misses in 1,500 grey crops, the edge 121: ``python bench/tight_crops.py sweep``.)
#: Only images searched again pay: one more detection on a larger copy.
PAD_SHARE = 0.2
PAD_MODE = "edge"  # or "constant": a grey border (PAD_GREY)
PAD_GREY = 128

#: A face whose box spans FILL_SHARE of both the image's width and its height fills the frame:
#: found, but without the context around it, which is where a detector's box goes wrong (on a
#: tight crop MTCNN's box is 1.2 times the crop, mostly past its edges). Such an image is searched
#: again on the padded copy, and the face found there replaces it. Measured on LFW's development
#: set (View 1; View 2 is kept for the report; ``python bench/tight_crops.py fill``,
#: bench/reported/tight_crops_fill.json), 1,500 tight crops each in colour and grey: the
#: subject's box spanned at least 0.81 (MTCNN) and 0.77 (YuNet) of the width and of the height;
#: on 1,500 untouched LFW images at most 0.62 (MTCNN) and 0.57 (YuNet). On all 13,233 LFW
#: images MTCNN has 2 faces that fill the frame: a close-up, and a false face past the edge
#: beside the subject, gone on the padded copy (``python bench/tight_crops.py lfw``).
FILL_SHARE = 0.7
#: A face with room found on both passes has nearly one box: the first pass's copy goes.
SAME_FACE_IOU = 0.5


class PaddedRetry(Detector):
    """``inner`` on every image, then again on a padded copy (:data:`PAD_SHARE`) of the images
    where it found no face or a face that fills the frame (:data:`FILL_SHARE`), so that such a
    face is found, and found as a whole. Faces from the padded copy are mapped back: boxes
    clipped to the image (the border is not part of the picture; and no face is assumed where
    none was found), the whole box kept as ``full_box`` for the crop, faces centred in the
    border dropped; landmarks are moved but not clipped (clipping moves a point, which would tilt
    the five-point warp). Images whose faces all have room are not searched again, so they get
    the same faces as the detector alone.

    :func:`create_detector` wraps every detector in one; ``inner`` is the detector itself, whose
    attributes stay reachable through this one."""

    def __init__(self, inner: Detector, share: float = PAD_SHARE, mode: str = PAD_MODE, fill: float = FILL_SHARE):
        if mode not in ("constant", "edge"):
            raise InputError(f"padding mode must be constant or edge, got {mode!r}")
        self.inner, self.share, self.mode, self.fill = inner, share, mode, fill
        self.name = inner.name
        # the content cache keys on ``id``: images cached before a change of the retry are searched again
        self.id = f"{inner.id}-pad{share}{mode}-fill{fill}"

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        found = self.inner.detect(batch)
        w, h = batch.width, batch.height
        again = [i for i, dets in enumerate(found) if not dets or any(self.fills(d, w, h) for d in dets)]
        if again:
            pad = pad_px(h, w, self.share)
            padded_found = self.inner.detect(padded(batch.subset(again), pad, self.mode))
            for i, dets in zip(again, padded_found):
                whole = unpadded(dets, pad, w, h)
                roomy = [d for d in found[i] if not self.fills(d, w, h)]
                found[i] = merged(roomy, whole) if whole else found[i]
        return found

    def fills(self, det: Detection, width: int, height: int) -> bool:
        """Whether the face spans :data:`FILL_SHARE` of the image's width and of its height."""
        return det.box[2] - det.box[0] >= self.fill * width and det.box[3] - det.box[1] >= self.fill * height

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


def merged(roomy: list[Detection], whole: list[Detection]) -> list[Detection]:
    """The faces found on the padded copy (``whole``) and the first pass's faces with room
    (``roomy``: a face that filled the frame is replaced by its whole self) that the padded copy
    did not find again (:data:`SAME_FACE_IOU`)."""
    return whole + [d for d in roomy if all(box_iou(d.box, w.box) < SAME_FACE_IOU for w in whole)]


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
    clipped to it (a box that was cut keeps its whole self as ``full_box``), faces whose centre
    lies in the border dropped."""
    out = []
    for d in dets:
        x1, y1, x2, y2 = (v - pad for v in d.box)
        if not (0 <= (x1 + x2) / 2 < width and 0 <= (y1 + y2) / 2 < height):
            continue
        box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
        marks = None if d.landmarks is None else np.asarray(d.landmarks, np.float32) - np.float32(pad)
        whole = (float(x1), float(y1), float(x2), float(y2))
        box = tuple(float(v) for v in box)
        out.append(Detection(box, d.score, marks, None if box == whole else whole))
    return out
