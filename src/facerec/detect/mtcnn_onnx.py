"""MTCNN without PyTorch: the three networks as ONNX graphs on ONNX Runtime (``data/mtcnn-*.onnx``,
facenet-pytorch's weights exported by ``scripts/export_mtcnn_onnx.py``), every step around them in
NumPy.

The steps are :mod:`.mtcnn_net`'s, one for one, so that the same faces come out: the pyramid and the
R-Net and O-Net crops read as window means from one summed-area table (adaptive average pooling's
integer windows, the resampling facenet-pytorch does with ``F.interpolate(mode="area")``), the same
thresholds, box regression, squaring, integer padding and NMS (:func:`.nms.numpy_batched_nms`), in
the same float32 arithmetic. Given the same network outputs, the boxes are bit for bit the tensor
version's (tests/integration/test_mtcnn_onnx.py runs these steps around PyTorch's networks to check it);
ONNX Runtime's convolutions round differently from PyTorch's in the last bits, so its faces are the
same faces with boxes within 1e-4 px (LFW).

``--detector mtcnn`` runs this on the CPU (:class:`.mtcnn.BatchedMTCNNDetector`): 1.05-1.2x the
tensor version's images/s on an idle 2-core machine, ~4x when other processes share the cores. ONNX
Runtime runs these small networks slower than PyTorch's oneDNN; the steps around them win it back,
split over the cores on threads while the networks' threads are idle (:func:`in_parts`).

The table is summed in integers: exact at any image size, where float32 sums stop being exact above
65,793 pixels (the tensor version switches to float64 there).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from facerec.detect.base import Detection
from facerec.detect.nms import batched_nms
from facerec.runtime.device import cpu_threads

DATA = Path(__file__).resolve().parent / "data"
GRAPHS = {name: DATA / f"mtcnn-{name}.onnx" for name in ("pnet", "rnet", "onet")}
# images searched at once: the integer table of 64 LFW images (250 x 250) is 48 MB; a batch of large
# photos is cut into chunks of about that many pixels so that its table stays near that size
CHUNK_PIXELS = 64 * 250 * 250
# inputs per network call: as many as make 16 MB of first-layer activations, :mod:`.mtcnn_net`'s
# chunks. On the 2-core development machine, idle, the three networks over 64 LFW images' pyramid and
# crops took 0.56 s so, 0.64 s in 2 MB chunks (under a load of 4-5 the 2 MB chunks were faster)
CPU_CHUNK_BYTES = 16 * 2**20


def onnx_networks(threads: int | None = None):
    """P-Net, R-Net and O-Net on ONNX Runtime's CPU provider: callables from float32 (N, 3, H, W) to
    their outputs as a tuple of arrays, in facenet-pytorch's order (P/R-Net: box regression,
    probabilities; O-Net: regression, landmarks, probabilities)."""
    from facerec.runtime.onnx_runner import OnnxRunner

    threads = threads or cpu_threads()

    def network(name: str, outputs: tuple[str, ...]):
        # no memory arena: P-Net sees a new input size at every pyramid level and photo size, and an
        # arena would keep the largest run's memory per session (20 large photos at once in the
        # service: +2.2 GB with it, tests/system/test_server.py's bound is 2 GB)
        runner = OnnxRunner(GRAPHS[name], threads=threads, label=f"MTCNN's {name} ({GRAPHS[name]})", arena=False)

        def run(x):
            out = runner.run(x)
            return tuple(out[o] for o in outputs)

        return run

    return (
        network("pnet", ("reg", "prob")),
        network("rnet", ("reg", "prob")),
        network("onet", ("reg", "landmarks", "prob")),
    )


class OnnxMTCNN:
    """Detect faces in batches of equal-sized uint8 (H, W, 3) images on the CPU, without PyTorch.

    Args:
        min_face_size, thresholds, factor, batch_size: as :class:`.mtcnn_net.BatchedMTCNN`'s.
        threads: ONNX Runtime's threads (default: every core this process may use).
        networks: (pnet, rnet, onet) callables in place of the ONNX graphs (the tests plug PyTorch's
            networks in, to check the steps around them bit for bit).
    """

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds=(0.6, 0.7, 0.7),
        factor: float = 0.709,
        batch_size: int = 64,
        threads: int | None = None,
        networks=None,
    ):
        self.min_face_size, self.thresholds, self.factor = min_face_size, tuple(thresholds), factor
        self.batch_size = batch_size
        self.workers = threads or cpu_threads()
        self.pnet, self.rnet, self.onet = networks or onnx_networks(threads)

    # -- public ---------------------------------------------------------------------------
    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Every face in each uint8 (H, W, 3) image, largest first (the detector interface)."""
        from facerec.detect.scale import detect_in_batches

        def batch(arr):
            boxes, scores, points, owner = self.detect_arrays(arr)
            return [list(zip(boxes[owner == j], scores[owner == j], points[owner == j])) for j in range(len(arr))]

        return detect_in_batches(images, self.batch_size, batch)

    def detect_arrays(self, images: np.ndarray):
        """Faces in uint8 (N, H, W, 3) images (or a list of equal-sized ones).

        Returns boxes float32 (M, 4) as x1, y1, x2, y2; scores (M,); landmarks (M, 5, 2); image index
        int64 (M,) of each face, best score first (as :meth:`.BatchedMTCNN.detect_tensor`)."""
        images = np.asarray(images)
        n, h, w = images.shape[:3]
        step = max(1, CHUNK_PIXELS // max(1, h * w))
        if n <= step:
            return self._detect_chunk(images)
        parts = [self._detect_chunk(images[s : s + step]) for s in range(0, n, step)]
        boxes, scores, points, owner = (np.concatenate(p) for p in zip(*parts))
        owner += np.repeat(np.arange(0, n, step), [len(p[3]) for p in parts])
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order], points[order], owner[order]

    def reframe(self, images: list[np.ndarray], boxes) -> np.ndarray:
        """:meth:`.BatchedMTCNN.reframe` without PyTorch: each box, squared, cut from its uint8
        (H, W, 3) host image, resampled to 48x48 (OpenCV's area interpolation, as there) and
        regressed by O-Net. float (M, 4) boxes in (x1, y1, x2, y2), float32 (M, 4) out; a box with
        nothing inside its image comes back as it was."""
        import cv2

        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        out = boxes.copy()
        if not len(boxes):
            return out
        sq = square(boxes)
        crops, kept = [], []
        for j, (image, box) in enumerate(zip(images, sq)):
            h, w = image.shape[:2]
            x0, y0, x1, y1 = (int(v) for v in box)  # :func:`cut`'s integer box (truncated), clipped
            x0, y0, x1, y1 = max(x0, 1) - 1, max(y0, 1) - 1, min(x1, w), min(y1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            crops.append(cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (48, 48), interpolation=cv2.INTER_AREA))
            kept.append(j)
        if kept:
            data = normalise(np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32))
            reg = batched(self.onet, data, 32 * 46 * 46)[0]
            out[kept] = regress(sq[kept], reg)
        return out

    # -- stages ---------------------------------------------------------------------------
    def _detect_chunk(self, images: np.ndarray):
        table = summed_area_table(images, self.workers)  # shared by the pyramid and the R-Net and O-Net crops
        boxes, inds = self._pnet_stage(table)
        boxes, inds = self._rnet_stage(boxes, inds, table)
        return self._onet_stage(boxes, inds, table)

    def _pnet_stage(self, table):
        _, rows, cols, _ = table.shape
        h, w = rows - 1, cols - 1
        all_boxes, all_inds = [np.zeros((0, 9), np.float32)], [np.zeros(0, np.int64)]
        for scale in pyramid_scales(h, w, self.min_face_size, self.factor):
            size = (int(h * scale + 1), int(w * scale + 1))
            data = in_parts(
                lambda lo, hi, size=size: normalise(area_resize(table[lo:hi], size)), len(table), self.workers
            )
            reg, probs = batched(self.pnet, data, 10 * size[0] * size[1])  # P-Net's first layer: 10 channels
            boxes, inds = candidates(reg, probs[:, 1], scale, self.thresholds[0])
            keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.5)
            all_boxes.append(boxes[keep])
            all_inds.append(inds[keep])
        boxes, inds = np.concatenate(all_boxes), np.concatenate(all_inds)
        keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[keep], inds[keep]
        w_, h_ = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        reg = boxes[:, 5:9]
        moved = np.stack(
            [
                boxes[:, 0] + reg[:, 0] * w_,
                boxes[:, 1] + reg[:, 1] * h_,
                boxes[:, 2] + reg[:, 2] * w_,
                boxes[:, 3] + reg[:, 3] * h_,
            ],
            1,
        )
        return square(moved), inds

    def _rnet_stage(self, boxes, inds, table):
        if len(boxes) == 0:
            return boxes, inds
        data, boxes, inds = cut(table, boxes, inds, 24, self.workers)
        reg, probs = batched(self.rnet, data, 28 * 22 * 22)
        score = probs[:, 1]
        ok = score > self.thresholds[1]
        boxes, inds, reg, score = boxes[ok], inds[ok], reg[ok], score[ok]
        keep = batched_nms(boxes, score, inds, 0.7)
        return square(regress(boxes[keep], reg[keep])), inds[keep]

    def _onet_stage(self, boxes, inds, table):
        if len(boxes) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32), inds
        data, boxes, inds = cut(table, boxes, inds, 48, self.workers)
        reg, marks, probs = batched(self.onet, data, 32 * 46 * 46)
        score = probs[:, 1]
        ok = score > self.thresholds[2]
        boxes, inds, reg, marks, score = boxes[ok], inds[ok], reg[ok], marks[ok], score[ok]
        bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        points = np.stack(
            [bw[:, None] * marks[:, :5] + boxes[:, :1] - 1, bh[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], 2
        )
        boxes = regress(boxes, reg)
        keep = batched_nms(boxes, score, inds, 0.7, mode="min")
        return boxes[keep], score[keep], points[keep], inds[keep]


# -- array helpers (shapes: boxes (M, 4+), inds (M,)); each one :mod:`.mtcnn_net`'s tensor helper ---------
def pyramid_scales(h: int, w: int, min_face_size: int, factor: float) -> list[float]:
    """facenet-pytorch's pyramid: from 12 / min_face_size down by ``factor`` while the shorter side
    stays at least 12 pixels (none for an image under 12 pixels)."""
    m = 12.0 / min_face_size
    minl, scale, scales = min(h, w) * m, m, []
    while minl >= 12:
        scales.append(scale)
        scale, minl = scale * factor, minl * factor
    return scales


def normalise(x: np.ndarray) -> np.ndarray:
    """0..255 pixels to MTCNN's input range, in float32 as the tensor version computes it."""
    return (x - np.float32(127.5)) * np.float32(0.0078125)


def candidates(reg: np.ndarray, probs: np.ndarray, scale: float, threshold: float):
    """P-Net cells over the threshold -> boxes float32 (M, 9): x1, y1, x2, y2, score, 4 regressions;
    in the order of ``nonzero`` (image, row, column), as the tensor version."""
    mask = probs >= threshold
    n, y, x = np.nonzero(mask)
    score = probs[mask]
    cell = np.stack([x, y], 1).astype(np.float32)
    s = np.float32(scale)  # a float32 tensor divided by a Python float: PyTorch divides in float32
    q1 = np.floor((2 * cell + 1) / s)
    q2 = np.floor((2 * cell + 12) / s)
    return np.concatenate([q1, q2, score[:, None], reg[n, :, y, x]], 1).astype(np.float32, copy=False), n.astype(
        np.int64
    )


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (facenet-pytorch's ``rerec``)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1, y1 = (
        boxes[:, 0] + w * np.float32(0.5) - side * np.float32(0.5),
        boxes[:, 1] + h * np.float32(0.5) - side * np.float32(0.5),
    )
    return np.stack([x1, y1, x1 + side, y1 + side], 1)


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    return boxes[:, :4] + reg * np.stack([w, h, w, h], 1)


def cut(table: np.ndarray, boxes: np.ndarray, inds: np.ndarray, size: int, workers: int = 1):
    """Crops of ``boxes`` as facenet-pytorch's ``pad`` cuts them (integer coordinates, clipped to the
    image), area-resampled to size x size, normalised for the network. Boxes that are empty after
    clipping are dropped (with their image index)."""
    _, rows, cols, _ = table.shape
    h, w = rows - 1, cols - 1
    b = np.trunc(boxes).astype(np.int64)
    x, y = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    ex, ey = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    ok = (ey > y - 1) & (ex > x - 1)
    rois, owners = np.stack([x - 1, y - 1, ex, ey], 1)[ok], inds[ok]
    crops = in_parts(lambda lo, hi: normalise(area_crops(table, rois[lo:hi], owners[lo:hi], size)), len(rois), workers)
    return crops, boxes[ok], inds[ok]


def summed_area_table(images: np.ndarray, workers: int = 1) -> np.ndarray:
    """(N, H+1, W+1, C) running sums of uint8 (N, H, W, C) images, in integers (exact): int32 while
    the whole image's sum fits, else int64."""
    n, h, w, c = images.shape
    dtype = np.int32 if h * w * 255 < 2**31 else np.int64
    table = np.zeros((n, h + 1, w + 1, c), dtype)

    def fill(lo, hi):
        inner = table[lo:hi, 1:, 1:]
        np.cumsum(images[lo:hi], axis=1, dtype=dtype, out=inner)
        np.cumsum(inner, axis=2, out=inner)

    in_parts(fill, n, workers)
    return table


def area_resize(table: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The whole images of a summed-area table resized to ``size`` (h, w) as ``F.interpolate(mode=
    "area")`` does it: each window's sum divided by its height, then by its width, in float32 (the
    tensor version's arithmetic, bit for bit). Returns float32 (N, C, h, w)."""
    _, rows, cols, _ = table.shape

    def windows(length, out):
        i = np.arange(out)
        lo, hi = i * length // out, ((i + 1) * length + out - 1) // out
        return lo, hi, (hi - lo).astype(np.float32)

    y0, y1, kh = windows(rows - 1, size[0])
    x0, x1, kw = windows(cols - 1, size[1])
    # sums over rows, then turned channels-first so that the column gathers read along the last
    # axis and the result comes out in the network's layout (3x faster than gathering pixels)
    strips = np.ascontiguousarray((np.take(table, y1, axis=1) - np.take(table, y0, axis=1)).transpose(0, 3, 1, 2))
    sums = (np.take(strips, x1, axis=3) - np.take(strips, x0, axis=3)).astype(np.float32)  # exact below 2^24
    sums /= kh[:, None]
    sums /= kw
    return sums


def area_crops(table: np.ndarray, rois: np.ndarray, inds: np.ndarray, size: int) -> np.ndarray:
    """Cut integer boxes (x0, y0, x1, y1: pixels x0..x1-1) of the images of ``table`` and resize each
    to size x size as adaptive average pooling would, all at once: every output pixel is a window sum
    read from the table with four gathers, divided by the window's pixel count in float32.
    Returns float32 (M, C, size, size)."""
    n, rows, cols, channels = table.shape
    if len(rois) == 0:
        return np.zeros((0, channels, size, size), np.float32)
    i = np.arange(size)

    def windows(start, length):  # adaptive pooling's integer windows, (M, size) each
        lo = start[:, None] + i * length[:, None] // size
        hi = start[:, None] + ((i + 1) * length[:, None] + size - 1) // size
        return lo, hi

    y0, y1 = windows(rois[:, 1], rois[:, 3] - rois[:, 1])
    x0, x1 = windows(rois[:, 0], rois[:, 2] - rois[:, 0])
    count = ((y1 - y0)[:, :, None] * (x1 - x0)[:, None, :]).astype(np.float32)
    index = np.int32 if n * rows * cols < 2**31 else np.int64  # int32 gathers: ~1.8x faster
    flat = table.reshape(-1, channels)
    first = (inds[:, None] * rows) * cols
    r0, r1 = ((first + y * cols).astype(index)[:, :, None] for y in (y0, y1))
    x0, x1 = (x.astype(index)[:, None, :] for x in (x0, x1))

    def at(r, x):  # (M, size, size, C): the table at rows r, columns x
        return np.take(flat, r + x, axis=0)

    sums = (at(r1, x1) - at(r0, x1) - at(r1, x0) + at(r0, x0)).astype(np.float32)
    return np.ascontiguousarray((sums / count[..., None]).transpose(0, 3, 1, 2))


def in_parts(work, n: int, workers: int):
    """``work(lo, hi)`` over ``workers`` slices of range(n) on threads, the arrays it returns joined
    (NumPy's gathers, sums and arithmetic on large arrays let go of the GIL). The steps around the
    networks are a third of the time, and the networks' threads are idle while they run."""
    if workers < 2 or n < 2 * workers:
        return work(0, n)
    bounds = np.linspace(0, n, workers + 1).astype(int)
    parts = list(_pool(workers).map(lambda b: work(*b), zip(bounds[:-1], bounds[1:])))
    return None if parts[0] is None else np.concatenate(parts)


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="mtcnn")
    return _POOLS[workers]


def batched(net, data: np.ndarray, first_layer_values: int):
    """``net`` over ``data`` in chunks whose first-layer output fits the cache, outputs concatenated.
    ``first_layer_values``: floats in the first layer's output per input."""
    chunk = max(1, CPU_CHUNK_BYTES // (4 * first_layer_values))
    if len(data) <= chunk:
        return net(data)
    outs = [net(data[s : s + chunk]) for s in range(0, len(data), chunk)]
    return tuple(np.concatenate(parts) for parts in zip(*outs))
