"""``mtcnn`` (the batched tensor MTCNN of :mod:`facerec.detect.mtcnn_net`, on the CPU or a GPU) and
``mtcnn-reference`` (facenet-pytorch's own MTCNN, the oracle tests compare against)."""

from __future__ import annotations

import numpy as np

from facerec.detect.base import Detection, Detector
from facerec.detect.host import HostDetector
from facerec.detect.scale import DETECT_MAX_SIDE, search_tensor
from facerec.image_batch import ImageBatch


class BatchedMTCNNDetector(Detector):
    name = "mtcnn"

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        from facerec.detect.mtcnn_net import BatchedMTCNN

        self.net = BatchedMTCNN(device=device, batch_size=batch_size)
        self.id = f"mtcnn-batched-{self.net.min_face_size}-{self.net.thresholds}-{DETECT_MAX_SIDE}"

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        imgs, scale = search_tensor(batch)
        boxes, scores, points, owner = (t.cpu().numpy() for t in self.net.detect_tensor(imgs))
        out: list[list[Detection]] = [[] for _ in range(len(batch))]
        for box, score, marks, j in zip(boxes * scale, scores, points * scale, owner):
            out[j].append(Detection(tuple(float(v) for v in box), float(score), marks.astype(np.float32)))
        return out


class ReferenceMTCNNDetector(HostDetector):
    """facenet-pytorch's MTCNN, called as its README shows (one image at a time)."""

    name = "mtcnn-reference"

    def __init__(self, device: str = "cpu", batch_size: int = 1, min_face_size: int = 20, thresholds=(0.6, 0.7, 0.7)):
        from facenet_pytorch import MTCNN

        self.min_face_size = min_face_size
        self._mtcnn = MTCNN(
            keep_all=True, device=device, min_face_size=min_face_size, thresholds=list(thresholds), post_process=False
        )
        self.id = f"mtcnn-reference-{min_face_size}-{tuple(thresholds)}-{DETECT_MAX_SIDE}"

    def find(self, image):
        if min(image.shape[:2]) < self.min_face_size:  # facenet-pytorch has no pyramid scale for it: crashes
            return []
        boxes, probs, points = self._mtcnn.detect(image, landmarks=True)
        if boxes is None:
            return []
        return [
            Detection(tuple(float(v) for v in b), float(p), np.asarray(m, np.float32))
            for b, p, m in zip(boxes, probs, points)
        ]
