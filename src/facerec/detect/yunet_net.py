"""YuNet run in batches on ONNX Runtime, with OpenCV's decoding: the same faces as
``cv2.FaceDetectorYN`` (boxes and landmarks within 1e-4 pixel on LFW, the group photo and video
frames; ``tests/test_yunet.py``), several images per network call.

Why not ``cv2.FaceDetectorYN``: it runs one image per call on OpenCV's graph engine, and on this
project's 2-core CPU ONNX Runtime ran the same network ~1.5x faster (2026-12-06, 1,000 LFW images:
412 images/s against 637 one at a time and 658 eight at a time, one run).

The published graph fixes the batch at 1 (its input is (1, 3, H, W) and its heads reshape to
(1, -1, k)); :func:`batched_graph` frees the batch dimension, nothing else. Decoding follows
OpenCV's ``FaceDetectorYN``: the image is padded (bottom and right, zeros) to a multiple of 32; on
each of the three strides a cell's score is sqrt(class * objectness), its box centre an offset from
the cell, its size exp(.) strides; greedy NMS over integer boxes, best first, as ``cv::NMSBoxes``.

On a GPU the same graph runs in PyTorch (:func:`torch_network`, converted by :mod:`.onnx_torch`;
its outputs equal ONNX Runtime's to 1e-5), many images per call, decoded the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facerec.errors import WeightsError

STRIDES = (8, 16, 32)
DIVISOR = 32  # the network's input sides must be multiples of this (its coarsest stride)
TOP_K = 5000  # candidates kept before NMS, as the OpenCV zoo demo


def batched_graph(path) -> bytes:
    """The YuNet graph at ``path`` with a free batch dimension (serialised ONNX)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "n"
    for init in model.graph.initializer:
        shape = numpy_helper.to_array(init)
        # each head's Reshape target (1, -1, k): 0 copies the batch from the input instead
        if shape.dtype == np.int64 and shape.shape == (3,) and shape[0] == 1 and shape[1] == -1:
            init.CopyFrom(numpy_helper.from_array(np.array([0, -1, shape[2]], np.int64), init.name))
    return model.SerializeToString()


def padded_size(height: int, width: int) -> tuple[int, int]:
    return (-(-height // DIVISOR) * DIVISOR, -(-width // DIVISOR) * DIVISOR)


def network_input(images: list[np.ndarray]) -> np.ndarray:
    """Same-sized RGB uint8 (H, W, 3) images -> float32 (n, 3, H', W') BGR, zero-padded to
    multiples of 32 (the network was trained on OpenCV's BGR)."""
    h, w = images[0].shape[:2]
    ph, pw = padded_size(h, w)
    x = np.zeros((len(images), 3, ph, pw), np.float32)
    for i, image in enumerate(images):
        for channel in range(3):  # a plane at a time: no (n, H, W, 3) stacked copy
            x[i, channel, :h, :w] = image[:, :, 2 - channel]
    return x


class Decoder:
    """The network's outputs for a batch -> per image an (k, 15) float32 array in
    ``cv2.FaceDetectorYN``'s layout: x, y, w, h, five (x, y) landmarks, score; best first."""

    def __init__(self, score: float, nms: float):
        self.score, self.nms = score, nms

    @staticmethod
    def cells(anchor: np.ndarray, ph: int, pw: int) -> tuple[np.ndarray, ...]:
        """The column, row and stride (float32) of each anchor index, in the network's output order:
        stride 8's cells row by row, then 16's, then 32's."""
        sizes = [(ph // s) * (pw // s) for s in STRIDES]
        starts = np.cumsum([0, *sizes])
        level = np.searchsorted(starts, anchor, side="right") - 1
        stride = np.asarray(STRIDES)[level]
        local = anchor - starts[level]
        cols = pw // stride
        return tuple(v.astype(np.float32) for v in (local % cols, local // cols, stride))

    def __call__(self, out: dict[str, np.ndarray], padded: tuple[int, int]) -> list[np.ndarray]:
        def heads(kind):
            return np.concatenate([out[f"{kind}_{s}"] for s in STRIDES], axis=1)

        scores = np.sqrt(np.clip(heads("cls")[..., 0], 0, 1) * np.clip(heads("obj")[..., 0], 0, 1))
        image, anchor = np.nonzero(scores > self.score)  # the few candidates of the whole batch, by image
        score = scores[image, anchor]
        c, r, s = (v[:, None] for v in self.cells(anchor, *padded))
        b = heads("bbox")[image, anchor]
        size = np.exp(b[:, 2:4]) * s
        corner = (np.concatenate([c, r], 1) + b[:, 0:2]) * s - size / 2
        points = (heads("kps")[image, anchor].reshape(-1, 5, 2) + np.stack([c, r], -1)) * s[..., None]
        faces = np.concatenate([corner, size, points.reshape(-1, 10), score[:, None]], axis=1).astype(np.float32)
        bounds = np.searchsorted(image, np.arange(len(scores) + 1))
        found = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            mine = faces[lo:hi][np.argsort(-score[lo:hi], kind="stable")[:TOP_K]]
            found.append(mine[greedy_nms(mine[:, :4].astype(np.int32), self.nms)] if hi - lo > 1 else mine)
        return found


def greedy_nms(rects: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept from integer (x, y, w, h) rects already sorted best first: a rect goes when its
    IoU with a kept one exceeds ``threshold`` (``cv::NMSBoxes``; two empty rects count as equal)."""
    x1, y1 = rects[:, 0], rects[:, 1]
    x2, y2 = x1 + rects[:, 2], y1 + rects[:, 3]
    area = rects[:, 2].astype(np.int64) * rects[:, 3]
    alive = np.ones(len(rects), bool)
    keep = []
    for i in range(len(rects)):
        if not alive[i]:
            continue
        keep.append(i)
        rest = np.nonzero(alive[i + 1 :])[0] + i + 1
        inter = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None) * np.clip(
            np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None
        )
        union = area[i] + area[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        alive[rest[iou > threshold]] = False
    return np.array(keep, np.int64)


# Bump when :mod:`.onnx_torch`'s converted form changes: older conversions are then made anew.
TORCH_RECIPE = 1


def torch_network(model_path: Path, sha256: str, device: str):
    """YuNet as a PyTorch module on ``device`` (for GPUs: this project's ONNX Runtime is the CPU
    build). The graph is converted once (needs ``onnx``) and cached in ``FACEREC_HOME/weights``,
    named by the model's sha256; a damaged cached conversion is made anew; where that folder cannot
    be written the conversion is kept in memory for this process only."""
    from facerec.paths import atomic_write_bytes, facerec_home
    from facerec.runtime.onnx_torch import convert, load_module

    cached = facerec_home() / "weights" / f"{Path(model_path).stem}-{sha256[:12]}.torch{TORCH_RECIPE}.npz"
    damage = None
    if cached.is_file():
        try:
            return load_module(cached, device)
        except WeightsError as exc:
            damage = exc
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise damage or WeightsError(
            f"YuNet on {device} runs a PyTorch conversion of its graph, made once with the onnx package: "
            f"pip install -r requirements.txt, or copy {cached.name} into {cached.parent} from a machine that made it"
        ) from None
    data = convert(model_path)
    try:
        atomic_write_bytes(cached, data)
    except OSError:  # a read-only cache: this process only
        return load_module(data, device)
    return load_module(cached, device)
