"""Detectors by name: each finds every face in a batch of images. Plugins register the same way.

``mtcnn`` (default) is the batched tensor MTCNN (:mod:`facerec.align.mtcnn_batched`), on the CPU
or a GPU; ``mtcnn-reference`` is facenet-pytorch's own MTCNN, the oracle tests compare against;
``dlib`` is dlib's HOG detector; ``dlib+mtcnn`` runs HOG and lets MTCNN find the faces HOG misses;
``yunet`` is OpenCV's YuNet (one box, 5 landmarks and a score per face; several times MTCNN's
speed on a CPU) run in batches on ONNX Runtime, ``yunet-opencv`` the same network through
``cv2.FaceDetectorYN`` (the reference ``yunet`` is checked against); ``yunet+onet`` is YuNet with
each box re-framed by MTCNN's O-Net (the framing FaceNet was trained on); ``resize`` takes the
whole image as the face (the seed's option).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from facerec.align.base import Detection
from facerec.align.detectors import DETECT_MAX_SIDE, downscale, downscaled_batches
from facerec.errors import InputError, WeightsError
from facerec.weights import ModelFile, model_path
from facerec.pipeline.batch import ImageBatch


class Detector(ABC):
    """Finds faces. ``id`` names the detector and its settings (it keys the content cache)."""

    name: str
    id: str

    @abstractmethod
    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        """Every face of each image in ``batch``, in any order; [] for an image without one."""


class BatchedMTCNNDetector(Detector):
    name = "mtcnn"

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        from facerec.align.mtcnn_batched import BatchedMTCNN

        self.net = BatchedMTCNN(device=device, batch_size=batch_size)
        self.id = f"mtcnn-batched-{self.net.min_face_size}-{self.net.thresholds}-{DETECT_MAX_SIDE}"

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        imgs, scale = search_tensor(batch)
        boxes, scores, points, owner = (t.cpu().numpy() for t in self.net.detect_tensor(imgs))
        out: list[list[Detection]] = [[] for _ in range(len(batch))]
        for box, score, marks, j in zip(boxes * scale, scores, points * scale, owner):
            out[j].append(Detection(tuple(float(v) for v in box), float(score), marks.astype(np.float32)))
        return out


def search_tensor(batch: ImageBatch):
    """The batch as one float tensor (n, 3, h, w) 0..255 on its device, its longest side at most
    DETECT_MAX_SIDE, and the factor that maps coordinates in it back to the images."""
    scale = max(batch.height, batch.width) / DETECT_MAX_SIDE
    if scale <= 1:
        return batch.tensor, 1.0
    if batch.on_host:  # a large photo: the copy is made on the host, so the full-size picture
        # never becomes a float tensor
        small = [downscale(img, DETECT_MAX_SIDE)[0] for img in batch.host]
        return ImageBatch(small, batch.device).tensor, batch.width / small[0].shape[1]
    import torch.nn.functional as F

    size = (max(1, round(batch.height / scale)), max(1, round(batch.width / scale)))
    return F.interpolate(batch.tensor, size=size, mode="bilinear", antialias=True, align_corners=False), scale


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


class DlibHOGDetector(HostDetector):
    """dlib's HOG + linear SVM frontal face detector (image upsampled once), CPU only."""

    name = "dlib"

    def __init__(self, device: str = "cpu", batch_size: int = 1, upsample: int = 1):
        from facerec.dlib_models import import_dlib

        self._detector = import_dlib().get_frontal_face_detector()
        self.upsample = upsample
        self.id = f"dlib-hog-{upsample}-{DETECT_MAX_SIDE}"

    def find(self, image):
        rects, scores, _ = self._detector.run(np.ascontiguousarray(image), self.upsample, 0.0)
        return [
            Detection((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(s))
            for r, s in zip(rects, scores)
        ]


#: A face that fills the frame (ID and badge photos, avatars, face datasets cropped at the face)
#: has no context around it, which detectors need (MTCNN most): an image where the first pass finds nothing is
#: searched again on a copy with a border of PAD_SHARE of its longest side on every side.
#: Measured on LFW View 2's pair images cropped to their MTCNN box (``python bench/tight_crops.py
#: sweep --sample 1500``, bench/reported/tight_crops_sweep.json): MTCNN alone missed 131 of 1,500
#: grey crops (8 of 1,500 in colour; YuNet none); a grey border found 119 / 124 / 126 / 124 of the
#: 131 at 10 / 20 / 30 / 50% of the side, the edge replicated 119 / 121 / 121 / 124; every
#: padding found all 8 colour misses. Only images where nothing was found pay: one more detection
#: on a larger copy (both passes together 16-21 ms per image at 30% on the 2-core machine).
PAD_SHARE = 0.3
PAD_MODE = "constant"  # or "edge": the image's border pixels replicated
PAD_GREY = 128


class PaddedRetry(Detector):
    """``inner`` on every image, then again on a padded copy (:data:`PAD_SHARE`) of the images where
    it found no face, so that a face filling the frame is found. Faces from the padded copy are
    mapped back: boxes clipped to the image (the border is not part of the picture; and no face
    is assumed where none was found), faces centred in the border dropped; landmarks
    are moved but not clipped (clipping moves a point, which would tilt the five-point warp).
    The first pass is untouched, so an image with a face found as before gets the same faces.

    :func:`create_detector` wraps every detector in one; ``inner`` is the detector itself, whose
    attributes stay reachable through this one."""

    def __init__(self, inner: Detector, share: float = PAD_SHARE, mode: str = PAD_MODE):
        if mode not in ("constant", "edge"):
            raise InputError(f"padding mode must be constant or edge, got {mode!r}")
        self.inner, self.share, self.mode = inner, share, mode
        self.name = inner.name
        # the content cache keys on ``id``: images cached as faceless before the retry are searched again
        self.id = f"{inner.id}-pad{share}{mode}"

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        found = self.inner.detect(batch)
        missed = [i for i, dets in enumerate(found) if not dets]
        if missed:
            pad = pad_px(batch.height, batch.width, self.share)
            again = self.inner.detect(padded(batch.subset(missed), pad, self.mode))
            for i, dets in zip(missed, again):
                found[i] = unpadded(dets, pad, batch.width, batch.height)
        return found

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


def pad_px(height: int, width: int, share: float) -> int:
    """The border, px on every side, for an image of this size."""
    return max(1, round(share * max(height, width)))


def padded(batch: ImageBatch, pad: int, mode: str) -> ImageBatch:
    """Each image of ``batch`` with ``pad`` pixels more on every side: grey or its edge replicated;
    host arrays stay host arrays, device tensors stay on their device (the GPU path)."""
    if batch.on_host:
        border = {"mode": "edge"} if mode == "edge" else {"constant_values": PAD_GREY}
        return ImageBatch([np.pad(img, ((pad, pad), (pad, pad), (0, 0)), **border) for img in batch.host], batch.device)
    import torch

    h, w = batch.height, batch.width
    out = []
    for img in batch.images:  # uint8 (3, H, W) on the device
        if mode == "edge":  # each padded pixel reads its nearest image pixel
            ys = torch.arange(-pad, h + pad, device=img.device).clamp_(0, h - 1)
            xs = torch.arange(-pad, w + pad, device=img.device).clamp_(0, w - 1)
            out.append(img[:, ys][:, :, xs])
        else:
            big = torch.full((img.shape[0], h + 2 * pad, w + 2 * pad), PAD_GREY, dtype=img.dtype, device=img.device)
            big[:, pad : pad + h, pad : pad + w] = img
            out.append(big)
    return ImageBatch(out, batch.device)


def unpadded(dets: list[Detection], pad: int, width: int, height: int) -> list[Detection]:
    """Faces found on a copy padded by ``pad`` px, in the original image's coordinates: boxes
    clipped to it, faces whose centre lies in the border dropped."""
    out = []
    for d in dets:
        x1, y1, x2, y2 = (v - pad for v in d.box)
        if not (0 <= (x1 + x2) / 2 < width and 0 <= (y1 + y2) / 2 < height):
            continue
        box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
        marks = None if d.landmarks is None else np.asarray(d.landmarks, np.float32) - np.float32(pad)
        out.append(Detection(tuple(float(v) for v in box), d.score, marks))
    return out


class CascadeDetector(Detector):
    """``first`` on every image; ``second`` only on the images where ``first`` finds no face.

    dlib's HOG detector frames faces the way dlib's landmark model and descriptor were trained,
    but misses turned and partly hidden faces (40 of LFW's 7,701 pair images); MTCNN finds those.
    Every face of an image comes from one detector, never a mix."""

    def __init__(self, name: str, first: Detector, second: Detector):
        self.name, self.first, self.second = name, first, second
        self.id = f"{first.id}-else-{second.id}"

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        found = self.first.detect(batch)
        missed = [i for i, dets in enumerate(found) if not dets]
        if missed:
            for i, dets in zip(missed, self.second.detect(batch.subset(missed))):
                found[i] = dets
        return found


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


# At most this many pixels go through YuNet in one network call on the CPU: 8 LFW images (250x250).
# Eight at a time ran 3% faster than one at a time, 32 at a time 10% slower (the activations
# outgrow the cache); a large photo goes alone.
YUNET_BATCH_PIXELS = 8 * 256 * 256


# On a GPU, at most this many pixels per network call: 256 LFW images (padded to 256x256).
YUNET_DEVICE_BATCH_PIXELS = 256 * 256 * 256


class YuNetDetector(Detector):
    """OpenCV's YuNet (one box, five landmarks and a score per face), run in batches and decoded as
    ``cv2.FaceDetectorYN`` does (:mod:`facerec.align.yunet`): the same faces as OpenCV's own
    detector (``yunet-opencv``). On the CPU the network runs on ONNX Runtime, ~1.5x OpenCV's speed
    (~1.7 ms for a 250x250 LFW image on this project's 2-core machine; PyTorch's CPU kernels took
    ~9x longer); on a GPU it runs in PyTorch (``runtime="torch"`` asks for PyTorch on the
    CPU too). Landmarks in MTCNN's order: the eye on the image's left, the other eye, nose tip,
    mouth corners left then right."""

    name = "yunet"

    def __init__(
        self,
        device: str = "cpu",
        batch_size: int = 64,
        weights_dir=None,
        score: float = YUNET_SCORE,
        runtime: str = "auto",
    ):
        import torch

        from facerec.align.yunet import Decoder, batched_graph, torch_network
        from facerec.onnx_runner import OnnxRunner

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
            self._runner = OnnxRunner(graph, threads=torch.get_num_threads(), label=f"YuNet ({path})")
        else:
            self._net = torch_network(path, YUNET.sha256, device)
        self._decode = Decoder(score, YUNET_NMS)
        self.id = yunet_id(score)

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        if self._net is not None:
            return self._detect_on_device(batch)
        from facerec.align.yunet import network_input, padded_size

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

        from facerec.align.yunet import padded_size

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
                f"--align yunet-opencv needs opencv-python-headless >= 5 (found {cv2.__version__}): "
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
        from facerec.align.mtcnn_batched import BatchedMTCNN

        self.first = YuNetDetector(weights_dir=weights_dir)
        self.mtcnn = BatchedMTCNN(device="cpu", batch_size=batch_size)  # a few 48x48 crops: the CPU suffices
        self.id = f"{self.first.id}-onet"

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        found = self.first.detect(batch)
        faces = [(i, d) for i, dets in enumerate(found) for d in dets]
        if faces:
            boxes = self.mtcnn.reframe([batch.host[i] for i, _ in faces], [d.box for _, d in faces])
            for (_, d), box in zip(faces, boxes):
                d.box = tuple(float(v) for v in box)
        return found


class WholeImageDetector(Detector):
    """No detection: the whole image is the face (the seed's ``--align resize``)."""

    name = "resize"
    id = "resize"
    whole_image = True

    def __init__(self, device: str = "cpu", batch_size: int = 1):
        pass

    def detect(self, batch: ImageBatch) -> list[list[Detection]]:
        return [[Detection((0.0, 0.0, float(batch.width), float(batch.height)), 1.0)] for _ in range(len(batch))]


_REGISTRY: dict[str, Callable[..., Detector]] = {}


def register_detector(name: str, factory: Callable[..., Detector]) -> None:
    """Register a detector; ``factory(device=..., batch_size=...)`` builds it."""
    _REGISTRY[name] = factory


def detector_names() -> list[str]:
    return list(_REGISTRY)


def create_detector(
    name: str, *, device: str = "cpu", batch_size: int = 64, weights_dir=None, pad_misses: bool = True
) -> Detector:
    """Build detector ``name``; ``weights_dir`` is a folder searched first for the model files of
    detectors that have them (their factory takes ``weights_dir``). With ``pad_misses`` (the
    default) it is wrapped in :class:`PaddedRetry`, so it finds faces that fill the frame; False
    gives the detector alone (benchmarks compare the two)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown detector {name!r}; choose one of: {', '.join(_REGISTRY)}") from None
    import inspect

    takes_dir = "weights_dir" in inspect.signature(factory).parameters
    det = factory(device=device, batch_size=batch_size, **({"weights_dir": weights_dir} if takes_dir else {}))
    if not pad_misses or getattr(det, "whole_image", False):  # ``resize`` never misses
        return det
    return PaddedRetry(det)


register_detector("mtcnn", BatchedMTCNNDetector)
register_detector("mtcnn-reference", ReferenceMTCNNDetector)
register_detector("dlib", DlibHOGDetector)
register_detector(
    "dlib+mtcnn",
    lambda device="cpu", batch_size=64: CascadeDetector(
        "dlib+mtcnn", DlibHOGDetector(), BatchedMTCNNDetector(device=device, batch_size=batch_size)
    ),
)
register_detector("yunet", YuNetDetector)
register_detector("yunet-opencv", OpenCVYuNetDetector)
register_detector("yunet+onet", ReframedYuNetDetector)
register_detector("resize", WholeImageDetector)
