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

#: Host photos larger than this are cropped face by face from host memory, so that the full-size
#: picture never becomes a float tensor (a 40-megapixel photo would take 480 MB).
HOST_CROP_PIXELS = 4_000_000


class MarginCropper:
    """float32 (M, 3, size, size) crops on the batch's device, values 0..255."""

    def __init__(self, size: int, margin: float):
        self.size, self.margin = size, margin

    def crop(self, batch: ImageBatch, faces: list[tuple[int, Detection]]):
        import torch
        from torchvision.ops import roi_align

        big = batch.on_host and batch.height * batch.width > HOST_CROP_PIXELS
        dev = batch.device if big else batch.tensor.device
        boxes = torch.tensor([d.box for _, d in faces], dtype=torch.float32, device=dev).reshape(-1, 4)
        owner = torch.tensor([j for j, _ in faces], dtype=torch.float32, device=dev)
        rois = torch.stack([owner, *self.regions(boxes, batch.width, batch.height)], 1)
        with torch.inference_mode():
            if not big:
                return roi_align(
                    batch.tensor, rois, (self.size,) * 2, spatial_scale=1.0, sampling_ratio=-1, aligned=True
                )
            out = []
            for j, left, top, right, bottom in rois.round().long().tolist():
                region = np.ascontiguousarray(batch.host[j][top:bottom, left:right])
                t = torch.from_numpy(region).to(dev).permute(2, 0, 1)[None].float()
                roi = torch.tensor([[0.0, 0.0, 0.0, right - left, bottom - top]], device=dev)
                out.append(roi_align(t, roi, (self.size,) * 2, spatial_scale=1.0, sampling_ratio=-1, aligned=True))
            return torch.cat(out)

    def regions(self, boxes, width: int, height: int):
        """Each box grown by the margin (px of the output crop), clipped to the image, truncated to
        whole pixels as facenet-pytorch's ``extract_face`` does: (left, top, right, bottom)."""
        import torch

        size, margin = self.size, self.margin
        x1, y1, x2, y2 = boxes.unbind(1)
        mx, my = margin * (x2 - x1) / max(size - margin, 1), margin * (y2 - y1) / max(size - margin, 1)
        left, top = torch.clamp(x1 - mx / 2, min=0).trunc(), torch.clamp(y1 - my / 2, min=0).trunc()
        right, bottom = torch.clamp(x2 + mx / 2, max=width).trunc(), torch.clamp(y2 + my / 2, max=height).trunc()
        # a box outside the picture still gets a (one-pixel) region, never an empty one
        left, top = (
            torch.minimum(left, torch.full_like(left, width - 1)),
            torch.minimum(top, torch.full_like(top, height - 1)),
        )
        return left, top, torch.maximum(right, left + 1), torch.maximum(bottom, top + 1)


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
