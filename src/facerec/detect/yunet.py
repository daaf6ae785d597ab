"""``yunet`` (OpenCV's YuNet in batches on ONNX Runtime, or PyTorch on a GPU), ``yunet-opencv`` (the same
network through ``cv2.FaceDetectorYN``, the reference) and ``yunet+onet`` (YuNet's boxes re-framed by MTCNN's O-Net)."""

from __future__ import annotations

import numpy as np

from facerec.detect.base import Detection, Detector
from facerec.detect.host import HostDetector
from facerec.detect.scale import DETECT_MAX_SIDE, downscaled_batches, search_tensor
from facerec.errors import InputError, WeightsError
from facerec.image_batch import ImageBatch
from facerec.limits import YUNET_BATCH_PIXELS, YUNET_DEVICE_BATCH_PIXELS
from facerec.runtime.weights import ModelFile, model_path

YUNET = ModelFile(
    filename="face_detection_yunet_2026may.onnx",
    sha256="ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0",
    urls=(
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2026may.onnx",
        "https://huggingface.co/opencv/opencv_zoo/resolve/main/models/face_detection_yunet/face_detection_yunet_2026may.onnx",
    ),
    licence="MIT (Shiqi Yu, opencv_zoo)",
)
YUNET_SCORE = 0.7  # MTCNN's last-stage threshold; LFW: a face in every pair image at this score
YUNET_NMS = 0.3  # the OpenCV zoo demo's
# YuNet's pixels per network call, YUNET_BATCH_PIXELS on the CPU and YUNET_DEVICE_BATCH_PIXELS on a
# GPU, are set with the measurements behind them in facerec.limits


class YuNetDetector(Detector):
    """OpenCV's YuNet (one box, five landmarks and a score per face), run in batches and decoded as
    ``cv2.FaceDetectorYN`` does (:mod:`facerec.detect.yunet_net`): the same faces as OpenCV's own
    detector (``yunet-opencv``). On the CPU the network runs on ONNX Runtime, without PyTorch,
    ~1.5x OpenCV's speed (~1.7 ms for a 250x250 LFW image on this project's 2-core machine;
    PyTorch's CPU kernels took ~9x longer); on a GPU it runs in PyTorch (``runtime="torch"`` asks
    for PyTorch on the CPU too). Landmarks in MTCNN's order: the eye on the image's left, the
    other eye, nose tip, mouth corners left then right."""

    name = "yunet"

    def __init__(
        self,
        device: str = "cpu",
        batch_size: int = 64,
        weights_dir=None,
        score: float = YUNET_SCORE,
        runtime: str = "auto",
    ):
        from facerec.detect.yunet_net import Decoder, batched_graph, torch_network
        from facerec.runtime.device import cpu_threads
        from facerec.runtime.onnx_runner import OnnxRunner

        if runtime not in ("auto", "torch"):
            raise InputError(f"runtime must be auto or torch, got {runtime!r}")
        path = model_path(YUNET, weights_dir)
        self.device, self.batch_size = device, batch_size
        self._net = self._runner = None
        if device == "cpu" and runtime == "auto":
            try:
                graph = batched_graph(path)
            except Exception as exc:  # the file's hash matched, so this is onnx failing, not the file
                raise WeightsError(f"{path}: cannot prepare YuNet's graph for batches ({exc})") from None
            self._runner = OnnxRunner(graph, threads=cpu_threads(), label=f"YuNet ({path})")
        else:
            self._net = torch_network(path, YUNET.sha256, device)
        self._decode = Decoder(score, YUNET_NMS)
        self.id = yunet_id(score)

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        if self._net is not None:
            return self._detect_on_device(batch)
        from facerec.detect.yunet_net import network_input, padded_size

        out: list[list[Detection]] = [[] for _ in range(len(batch))]
        for chunk, small, scales in downscaled_batches(batch.host, self.batch_size, YUNET_BATCH_PIXELS):
            raw = self._runner.run(network_input(small))
            for i, faces, scale in zip(chunk, self._decode(raw, padded_size(*small[0].shape[:2])), scales):
                out[i] = _yunet_detections(faces, scale)
        return out

    def _detect_on_device(self, batch: ImageBatch) -> list[list[Detection]]:
        """The batch as one tensor (one shape; large photos downscaled as for MTCNN), BGR, zero-padded."""
        import torch
        import torch.nn.functional as F

        from facerec.detect.yunet_net import padded_size

        x, scale = search_tensor(batch)
        h, w = x.shape[2:]
        padded = padded_size(h, w)
        x = F.pad(x.to(self.device).flip(1), (0, padded[1] - w, 0, padded[0] - h))
        step = max(1, YUNET_DEVICE_BATCH_PIXELS // (padded[0] * padded[1]))
        out: list[list[Detection]] = []
        with torch.inference_mode():
            for start in range(0, len(x), step):
                raw = {k: v.cpu().numpy() for k, v in self._net(x[start : start + step]).items()}
                out += [_yunet_detections(faces, scale) for faces in self._decode(raw, padded)]
        return out


class OpenCVYuNetDetector(HostDetector):
    """YuNet through ``cv2.FaceDetectorYN`` (opencv >= 5 runs the 2026may model), one image at a
    time: the reference ``yunet`` is checked against. Same faces, so the same ``id``."""

    name = "yunet-opencv"

    def __init__(self, device: str = "cpu", batch_size: int = 1, weights_dir=None, score: float = YUNET_SCORE):
        import cv2

        if not hasattr(cv2, "FaceDetectorYN") or int(cv2.__version__.split(".")[0]) < 5:
            raise WeightsError(
                f"--detector yunet-opencv needs opencv-python-headless >= 5 (found {cv2.__version__}): "
                "pip install -r requirements.txt"
            )
        path = model_path(YUNET, weights_dir)
        # OpenCV 5 warns at every create that its new graph engine ignores a preferred target
        # (we set none): not the user's concern, so errors only while building
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score, YUNET_NMS, 5000)
        finally:
            cv2.utils.logging.setLogLevel(level)
        self._size = (320, 320)
        self.id = yunet_id(score)

    def find(self, image: np.ndarray) -> list[Detection]:
        import cv2

        h, w = image.shape[:2]
        if (w, h) != self._size:
            self._net.setInputSize((w, h))
            self._size = (w, h)
        _, faces = self._net.detect(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
        return [] if faces is None else _yunet_detections(faces, 1.0)


def yunet_id(score: float) -> str:
    return f"yunet-2026may-{score}-{YUNET_NMS}-{DETECT_MAX_SIDE}"


def _yunet_detections(faces: np.ndarray, scale: float) -> list[Detection]:
    """Rows in ``cv2.FaceDetectorYN``'s layout (x, y, w, h, 5 landmarks, score) -> detections,
    mapped back by ``scale`` to the image they came from."""
    return [
        Detection(
            (float(f[0]) * scale, float(f[1]) * scale, float(f[0] + f[2]) * scale, float(f[1] + f[3]) * scale),
            float(f[14]),
            np.asarray(f[4:14], np.float32).reshape(5, 2) * np.float32(scale),
        )
        for f in faces
    ]


class ReframedYuNetDetector(Detector):
    """``yunet+onet``: YuNet finds the faces (its score and landmarks kept); MTCNN's last network,
    O-Net, then moves each box to where MTCNN would have put it. FaceNet was trained on MTCNN's
    crops, and YuNet's boxes, though not biased against MTCNN's (median offsets under 1% of the
    box on LFW), are noisier; one 48x48 O-Net pass per face takes most of that out (median IoU
    with MTCNN's box 0.90 -> 0.93). LFW accuracy with each: README."""

    name = "yunet+onet"

    def __init__(self, device: str = "cpu", batch_size: int = 64, weights_dir=None):
        from facerec.detect.mtcnn_onnx import OnnxMTCNN

        self.first = YuNetDetector(weights_dir=weights_dir)
        # a few 48x48 crops: the CPU suffices, on ONNX Runtime (no torch); its boxes equal the
        # torch O-Net's within 1e-3 px, not bit for bit, hence the id's "-onnx"
        self.mtcnn = OnnxMTCNN(batch_size=batch_size)
        self.id = f"{self.first.id}-onet-onnx"

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        found = self.first.detect(batch)
        faces = [(i, d) for i, dets in enumerate(found) for d in dets]
        if faces:
            boxes = self.mtcnn.reframe([batch.host[i] for i, _ in faces], [d.box for _, d in faces])
            for (_, d), box in zip(faces, boxes):
                d.box = tuple(float(v) for v in box)
        return found
