"""``resize``: no detection, the whole image is the face (the seed's option, for pre-aligned crops)."""

from __future__ import annotations

from facerec.detect.base import Detection, Detector
from facerec.image_batch import ImageBatch


class WholeImageDetector(Detector):
    """No detection: the whole image is the face (``--detector resize``, the seed's ``--align resize``)."""

    name = "resize"
    id = "resize"
    whole_image = True

    def __init__(self, device: str = "cpu", batch_size: int = 1):
        pass

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        return [[Detection((0.0, 0.0, float(batch.width), float(batch.height)), 1.0)] for _ in range(len(batch))]
