"""Detectors that work on host arrays one image at a time; large photos are searched on a downscaled copy."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from facerec.detect.base import Detection, Detector
from facerec.detect.scale import DETECT_MAX_SIDE, downscale
from facerec.image_batch import ImageBatch


class HostDetector(Detector):
    """A detector that works on host arrays one image at a time (``find``); large photos are
    searched on a downscaled copy."""

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        out = []
        for image in batch.host:
            small, scale = downscale(image, DETECT_MAX_SIDE)
            out.append(
                [
                    Detection(
                        tuple(v * scale for v in d.box), d.score, None if d.landmarks is None else d.landmarks * scale
                    )
                    for d in self.find(small)
                ]
            )
        return out

    @abstractmethod
    def find(self, image: np.ndarray) -> list[Detection]: ...
