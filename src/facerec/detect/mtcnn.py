"""``mtcnn`` (the batched MTCNN: on a GPU the tensor version of :mod:`facerec.detect.mtcnn_net`, on the
CPU the ONNX Runtime one of :mod:`facerec.detect.mtcnn_onnx`) and ``mtcnn-reference`` (facenet-pytorch's
own MTCNN, the oracle tests compare against)."""

from __future__ import annotations

import numpy as np

from facerec.detect.base import Detection, Detector
from facerec.detect.host import HostDetector
from facerec.detect.scale import DETECT_MAX_SIDE, downscale, search_tensor
from facerec.errors import InputError
from facerec.image_batch import ImageBatch


class BatchedMTCNNDetector(Detector):
    """MTCNN over whole batches: on a GPU the networks and every step after them as tensors on the
    device (:class:`.mtcnn_net.BatchedMTCNN`, PyTorch); on the CPU the networks on ONNX Runtime and
    the steps in NumPy (:class:`.mtcnn_onnx.OnnxMTCNN`), with or without PyTorch installed.

    ONNX Runtime's is the faster on the CPU (300 LFW images in batches of 64 on the 2-core
    development machine, both in one run: 102 images/s against PyTorch's 97 idle, 55-60 against
    11-18 when other processes share the cores, where PyTorch's OpenMP threads wait on each other).
    ``runtime="torch"`` asks for PyTorch's on the CPU (comparisons; its old cache key).

    The two find the same faces, but ONNX Runtime's convolutions round differently from PyTorch's,
    so boxes differ in the last bits (within 1e-4 px on LFW): each has its own ``id``, which keys the
    detections cache."""

    name = "mtcnn"

    def __init__(self, device: str = "cpu", batch_size: int = 64, runtime: str = "auto"):
        if runtime not in ("auto", "torch", "onnx"):
            raise InputError(f"runtime must be auto, torch or onnx, got {runtime!r}")
        on_gpu = str(device).startswith("cuda")
        if runtime == "auto":
            runtime = "torch" if on_gpu else "onnx"
        if runtime == "onnx" and on_gpu:
            raise InputError("MTCNN on ONNX Runtime runs on the CPU; on a GPU it runs in PyTorch")
        if runtime == "torch":
            from facerec.detect.mtcnn_net import BatchedMTCNN

            self.net = BatchedMTCNN(device=device, batch_size=batch_size)
        else:
            from facerec.detect.mtcnn_onnx import OnnxMTCNN

            self.net = OnnxMTCNN(batch_size=batch_size)
        self.runtime = runtime
        kind = "batched" if runtime == "torch" else "onnx"  # the tensor MTCNN keeps its old cache key
        self.id = f"mtcnn-{kind}-{self.net.min_face_size}-{self.net.thresholds}-{DETECT_MAX_SIDE}"

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        if self.runtime == "torch":
            imgs, scale = search_tensor(batch)
            boxes, scores, points, owner = (t.cpu().numpy() for t in self.net.detect_tensor(imgs))
        else:
            imgs, scale = search_host(batch)
            boxes, scores, points, owner = self.net.detect_arrays(imgs)
        out: list[list[Detection]] = [[] for _ in range(len(batch))]
        for box, score, marks, j in zip(boxes * scale, scores, points * scale, owner):
            out[j].append(Detection(tuple(float(v) for v in box), float(score), marks.astype(np.float32)))
        return out


def search_host(batch: ImageBatch) -> tuple[np.ndarray, float]:
    """The batch as uint8 (n, h, w, 3), its longest side at most DETECT_MAX_SIDE, and the factor that
    maps coordinates in it back to the images: :func:`.scale.search_tensor`'s host images and factor
    (the same downscaled copy), kept as bytes for the ONNX MTCNN's integer summed-area table."""
    if max(batch.height, batch.width) <= DETECT_MAX_SIDE:
        return np.stack(batch.host), 1.0
    small = [downscale(img, DETECT_MAX_SIDE)[0] for img in batch.host]
    return np.stack(small), batch.width / small[0].shape[1]


class ReferenceMTCNNDetector(HostDetector):
    """facenet-pytorch's MTCNN, called as its README shows (one image at a time)."""

    name = "mtcnn-reference"

    def __init__(self, device: str = "cpu", batch_size: int = 1, min_face_size: int = 20, thresholds=(0.6, 0.7, 0.7)):
        from facerec.extras import require

        # PyTorch's own MTCNN: without torch a MissingExtra (an InputError) naming pip install 'facerec[gpu]'
        MTCNN = require("facenet_pytorch").MTCNN

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
