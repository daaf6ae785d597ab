"""Croppers: cut each face the way its embedder was trained (the embedder spec's ``crop``).

``margin`` (FaceNet): the detector box grown by a margin of the output crop, clipped to the image,
resampled on the device with ``roi_align`` (the same geometry as facenet-pytorch's ``extract_face``;
its embeddings agree with PIL-resized crops to cosine >= 0.997). ``dlib-chip``: dlib's 5-landmark
similarity alignment, as dlib's ResNet was trained. A whole-image "detection" (``--align resize``)
is resized as it is, whatever the style.
"""

from __future__ import annotations

import numpy as np

from ..align.base import Detection, resize_rgb
from ..errors import InputError
from .batch import ImageBatch


class MarginCropper:
    """float32 (M, 3, size, size) crops on the batch's device, values 0..255."""

    def __init__(self, size: int, margin: float):
        self.size, self.margin = size, margin

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]):
        import torch
        from torchvision.ops import roi_align

        imgs = batch.tensor
        h, w = imgs.shape[2:]
        size, margin = self.size, self.margin
        boxes = torch.tensor([d.box for _, d in faces], dtype=imgs.dtype, device=imgs.device).reshape(-1, 4)
        owner = torch.tensor([j for j, _ in faces], dtype=imgs.dtype, device=imgs.device)
        x1, y1, x2, y2 = boxes.unbind(1)
        mx, my = margin * (x2 - x1) / max(size - margin, 1), margin * (y2 - y1) / max(size - margin, 1)
        left, top = torch.clamp(x1 - mx / 2, min=0).trunc(), torch.clamp(y1 - my / 2, min=0).trunc()
        right, bottom = torch.clamp(x2 + mx / 2, max=w).trunc(), torch.clamp(y2 + my / 2, max=h).trunc()
        rois = torch.stack([owner, left, top, right, bottom], 1)
        with torch.inference_mode():
            return roi_align(imgs, rois, (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


class DlibChipCropper:
    """uint8 (M, size, size, 3) host crops: 5 landmarks from dlib's shape predictor inside the
    detector box, then ``get_face_chip`` (similarity transform, padding 0.25)."""

    def __init__(self, size: int = 150, padding: float = 0.25):
        from ..dlib_models import SHAPE_5, dlib_model_path, import_dlib

        self._dlib = import_dlib()
        self._predictor = self._dlib.shape_predictor(str(dlib_model_path(SHAPE_5)))
        self.size, self.padding = size, padding

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]) -> np.ndarray:
        return np.stack([self.chip(batch.host[j], d) for j, d in faces])

    def chip(self, image: np.ndarray, det: Detection) -> np.ndarray:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        shape = self._predictor(image, self._dlib.rectangle(x1, y1, x2, y2))
        chip = self._dlib.get_face_chip(image, shape, size=self.size, padding=self.padding)
        return np.ascontiguousarray(np.asarray(chip, dtype=np.uint8))


class WholeImageCropper:
    """uint8 (M, size, size, 3): each image resized whole (Pillow's antialiased bilinear)."""

    def __init__(self, size: int):
        self.size = size

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]) -> np.ndarray:
        return np.stack([resize_rgb(batch.host[j], self.size) for j, _ in faces])


def create_cropper(style: str, *, size: int, margin: float, whole_image: bool = False):
    if whole_image:
        return WholeImageCropper(size)
    if style == "margin":
        return MarginCropper(size, margin)
    if style == "dlib-chip":
        return DlibChipCropper(size)
    raise InputError(f"unknown crop style {style!r}")
