"""Alignment: ``mtcnn`` (default), ``dlib`` (HOG detector) or ``resize`` (whole image)."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import Aligner, Detection, Face, margin_crop, resize_rgb

ALIGNERS = ("mtcnn", "dlib", "resize")


class DetectingAligner(Aligner):
    """A detector finds every face; a cropper cuts each one the way the embedder wants."""

    def __init__(self, name: str, detector, cropper, detector_id: str):
        self.name, self._detector, self._cropper = name, detector, cropper
        self.detector_id = detector_id  # identifies detections for the shared detection cache

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        return self._detector.detect(images)

    def crop(self, image: np.ndarray, detections: list[Detection]) -> list[Face]:
        return [Face(self._cropper(image, d), d.box, d.score, d.landmarks) for d in detections]

    def align(self, images: list[np.ndarray]) -> list[list[Face]]:
        return [self.crop(img, dets) for img, dets in zip(images, self.detect(images))]


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
    from .detectors import DETECT_MAX_SIDE

    if name == "mtcnn":
        det = MTCNNDetector(device=device)
        return DetectingAligner(name, det, make_cropper(crop, size, margin),
                                f"mtcnn-{det.min_face_size}-{det.thresholds}-{DETECT_MAX_SIDE}")
    if name == "dlib":
        det = DlibHOGDetector()
        return DetectingAligner(name, det, make_cropper(crop, size, margin), f"dlib-hog-{det.upsample}-{DETECT_MAX_SIDE}")
    raise InputError(f"unknown aligner {name!r}; choose one of: {', '.join(ALIGNERS)}")


__all__ = ["ALIGNERS", "Aligner", "Detection", "Face", "create_aligner", "margin_crop", "resize_rgb"]
