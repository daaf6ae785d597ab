"""Turn a detection into the crop an embedder expects (its spec's ``crop`` style)."""

from __future__ import annotations

import numpy as np

from ..dlib_models import SHAPE_5, dlib_model_path, import_dlib
from ..errors import InputError
from .base import Detection, margin_crop


class MarginCropper:
    """FaceNet style: detector box plus margin, resized."""

    def __init__(self, size: int, margin: float):
        self.size, self.margin = size, margin

    def __call__(self, image: np.ndarray, det: Detection) -> np.ndarray:
        return margin_crop(image, det.box, self.size, self.margin)


class DlibChipCropper:
    """dlib's own alignment: 5 landmarks from dlib's shape predictor inside the detector box,
    then ``get_face_chip`` (similarity transform, padding 0.25), as the ResNet was trained."""

    def __init__(self, size: int = 150, padding: float = 0.25):
        self._dlib = import_dlib()
        self._predictor = self._dlib.shape_predictor(str(dlib_model_path(SHAPE_5)))
        self.size, self.padding = size, padding

    def __call__(self, image: np.ndarray, det: Detection) -> np.ndarray:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        rect = self._dlib.rectangle(x1, y1, x2, y2)
        shape = self._predictor(image, rect)
        chip = self._dlib.get_face_chip(image, shape, size=self.size, padding=self.padding)
        return np.ascontiguousarray(np.asarray(chip, dtype=np.uint8))


def make_cropper(style: str, size: int, margin: float):
    if style == "margin":
        return MarginCropper(size, margin)
    if style == "dlib-chip":
        return DlibChipCropper(size)
    raise InputError(f"unknown crop style {style!r}")
