"""``dlib``: dlib's HOG + linear SVM frontal face detector."""

from __future__ import annotations

import numpy as np

from facerec.detect.base import Detection
from facerec.detect.host import HostDetector
from facerec.detect.scale import DETECT_MAX_SIDE


class DlibHOGDetector(HostDetector):
    """dlib's HOG + linear SVM frontal face detector (image upsampled once), CPU only."""

    name = "dlib"

    def __init__(self, device: str = "cpu", batch_size: int = 1, upsample: int = 1):
        from facerec.runtime.dlib_models import import_dlib

        self._detector = import_dlib().get_frontal_face_detector()
        self.upsample = upsample
        self.id = f"dlib-hog-{upsample}-{DETECT_MAX_SIDE}"

    def find(self, image):
        rects, scores, _ = self._detector.run(np.ascontiguousarray(image), self.upsample, 0.0)
        return [
            Detection((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(s))
            for r, s in zip(rects, scores)
        ]
