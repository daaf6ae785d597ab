"""Alignment: ``mtcnn`` (default), ``dlib`` (HOG detector) or ``resize`` (whole image)."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import Aligner, Detection, Face, margin_crop, resize_rgb

ALIGNERS = ("mtcnn", "dlib", "resize")


class DetectingAligner(Aligner):
    """A detector finds every face; a cropper cuts each one the way the embedder wants."""

    def __init__(self, name: str, detector, cropper):
        self.name, self._detector, self._cropper = name, detector, cropper

    def align(self, images: list[np.ndarray]) -> list[list[Face]]:
        detections = self._detector.detect(images)
        return [[Face(self._cropper(img, d), d.box, d.score, d.landmarks) for d in dets]
                for img, dets in zip(images, detections)]


class ResizeAligner(Aligner):
    """No detection: the whole image is taken as the face and resized (the seed's ``resize``)."""

    name = "resize"

    def __init__(self, size: int):
        self.size = size

    def align(self, images: list[np.ndarray]) -> list[list[Face]]:
        return [[Face(resize_rgb(img, self.size), (0.0, 0.0, float(img.shape[1]), float(img.shape[0])), 1.0)]
                for img in images]


def create_aligner(name: str, *, crop: str, size: int, margin: float = 32, device: str = "cpu") -> Aligner:
    """Build an aligner; ``crop`` and ``size`` come from the embedder's spec."""
    from .croppers import make_cropper
    from .detectors import DlibHOGDetector, MTCNNDetector

    if name == "resize":
        return ResizeAligner(size)
    if name == "mtcnn":
        return DetectingAligner(name, MTCNNDetector(device=device), make_cropper(crop, size, margin))
    if name == "dlib":
        return DetectingAligner(name, DlibHOGDetector(), make_cropper(crop, size, margin))
    raise InputError(f"unknown aligner {name!r}; choose one of: {', '.join(ALIGNERS)}")


__all__ = ["ALIGNERS", "Aligner", "Detection", "Face", "create_aligner", "margin_crop", "resize_rgb"]
